// The one HTTP layer: base URL, bearer token, JSON in and out, refusals as HourglassApiError.
import { errorFromResponse, unreachable } from './errors';

export interface ClientOptions {
  /** The API, e.g. http://localhost:8080 */
  baseUrl: string;
  /** Bearer token (HOURGLASS_TOKEN); none when the API runs without auth. */
  token?: string;
  /** A fetch of your own (tests, proxies); default the global one. */
  fetch?: typeof fetch;
}

export type Query = Record<string, string | number | boolean | string[] | undefined>;

export interface RequestOptions {
  query?: Query;
  /** JSON-encoded unless it is a raw body (Buffer, string sent as-is, stream: see `raw`). */
  body?: unknown;
  /** The body goes out as it is (bytes or a stream), not as JSON. */
  raw?: boolean;
  headers?: Record<string, string | undefined>;
  signal?: AbortSignal;
}

export class Http {
  readonly baseUrl: string;
  private readonly token?: string;
  private readonly fetchFn: typeof fetch;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token || undefined;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** A JSON answer; a non-2xx answer throws HourglassApiError. */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The 2xx Response itself, its body unread (streams, downloads); a refusal throws HourglassApiError. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined && !opts.raw) headers['content-type'] = 'application/json';
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
    const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: opts.signal };
    if (opts.body !== undefined) {
      init.body = opts.raw ? (opts.body as RequestInit['body']) : JSON.stringify(opts.body);
      // A streamed request body must say so (fetch's rule); harmless for bytes.
      if (opts.raw) init.duplex = 'half';
    }
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path, opts.query), init);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      throw unreachable(this.baseUrl, err);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  url(path: string, query?: Query): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
    }
    const qs = q.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }
}

/** One path segment from a caller's id (ids are checked by the API; this keeps `/` and `?` out of the path). */
export const seg = (s: string) => encodeURIComponent(s);
