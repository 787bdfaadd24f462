// A small client of the REST API that times every call as the caller sees it.
export interface ApiResult<T = unknown> {
  status: number;
  body: T;
  /** Wall time of the call, ms. */
  ms: number;
  /** Seconds the server asked the client to wait before trying again (a 429's Retry-After). */
  retryAfter?: number;
}

export class ApiClient {
  /** Set when the bench is stopping: its loops' calls then fail at once instead of making more sandboxes. */
  closed = false;

  constructor(
    readonly baseUrl: string,
    /** Also what a bench's typed client (client/) authenticates with. */
    readonly token: string,
  ) {}

  async call<T = unknown>(method: string, urlPath: string, body?: unknown, timeoutMs = 300_000): Promise<ApiResult<T>> {
    if (this.closed) throw new Error('the bench is stopping');
    const started = performance.now();
    const res = await fetch(this.baseUrl + urlPath, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    const retryAfter = res.headers.get('retry-after');
    return { status: res.status, body: parsed as T, ms, ...(retryAfter ? { retryAfter: Number(retryAfter) } : {}) };
  }

  get = <T = unknown>(urlPath: string) => this.call<T>('GET', urlPath);
  post = <T = unknown>(urlPath: string, body: unknown = {}) => this.call<T>('POST', urlPath, body);
  delete = <T = unknown>(urlPath: string) => this.call<T>('DELETE', urlPath);
}

/** The cursor that fetches page `page` (0-based) of a list (`listPath` with its query), walked untimed. */
export async function cursorOfPage(api: ApiClient, listPath: string, page: number): Promise<string | undefined> {
  let cursor: string | undefined;
  for (let p = 0; p < page; p++) {
    const res = await api.get<{ nextCursor?: string } | undefined>(
      `${listPath}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    if (!res.body?.nextCursor) break;
    cursor = res.body.nextCursor;
  }
  return cursor;
}

/** "429 quota_exceeded" / "network: fetch failed": what went wrong with a call, short enough to count. */
export function failureOf(r: ApiResult | Error): string {
  if (r instanceof Error) return `network: ${r.message.split('\n')[0]}`;
  const code = (r.body as { error?: { code?: string } } | undefined)?.error?.code;
  return `${r.status}${code ? ` ${code}` : ''}`;
}

/** Counts of each kind of failure. */
export class Failures {
  readonly counts: Record<string, number> = {};
  readonly examples: Record<string, string> = {};

  add(step: string, what: ApiResult | Error): void {
    const key = `${step}: ${failureOf(what)}`;
    this.counts[key] = (this.counts[key] ?? 0) + 1;
    this.examples[key] ??= what instanceof Error ? what.message : JSON.stringify(what.body).slice(0, 300);
  }

  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  /** Not counting refusals that were retried. */
  get hard(): number {
    return Object.entries(this.counts).reduce((a, [k, n]) => (k.includes('(retried)') ? a : a + n), 0);
  }
}
