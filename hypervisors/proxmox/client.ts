// A small client for the PVE REST API (/api2/json) with API-token auth. It reads error text from
// the `message` body field (PVE ≥ 8.4) or else the HTTP reason phrase (older 8.x), and waits on
// task UPIDs treating `WARNINGS: n` as success: the two mistakes of AgentLab's client (docs/proxmox-api.md, end).
import http from 'node:http';
import https from 'node:https';

export type PveParams = Record<string, string | number | boolean | string[] | undefined>;

/** An HTTP-level answer other than 200, or no answer at all (status 0). */
export class PveApiError extends Error {
  constructor(
    /** 0 = no HTTP answer (refused, reset, timed out, TLS). */
    readonly status: number,
    /** PVE's own text: `message` field, else the reason phrase. */
    readonly pveMessage: string,
    readonly errors: Record<string, string> | undefined,
    readonly method: string,
    readonly path: string,
    /** errno-style code for transport failures (ECONNREFUSED…). */
    readonly code?: string,
  ) {
    const detail = errors
      ? ` (${Object.entries(errors)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ')})`
      : '';
    super(`PVE ${method} ${path}: ${status || code || 'no answer'} ${pveMessage}${detail}`);
    this.name = 'PveApiError';
  }
}

/** A task that ended with an exitstatus other than OK / WARNINGS: n. */
export class PveTaskError extends Error {
  constructor(
    readonly upid: string,
    readonly taskType: string,
    readonly exitstatus: string,
  ) {
    super(`PVE task ${taskType} failed: ${exitstatus}`);
    this.name = 'PveTaskError';
  }
}

/** A task still running at our deadline (it may yet finish). */
export class PveTaskTimeoutError extends Error {
  constructor(
    readonly upid: string,
    timeoutMs: number,
  ) {
    super(`PVE task ${upid} still running after ${timeoutMs} ms`);
    this.name = 'PveTaskTimeoutError';
  }
}

export interface TaskResult {
  upid: string;
  exitstatus: string;
  warnings: number;
}

export interface WaitTaskOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onPoll?: (elapsedMs: number) => void;
}

export interface RequestOptions {
  /** Retry on transient errors too (default: GET only). exec-status must not: it forgets pids. */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** Send the body as JSON: no percent-encoding, so a base64 parameter keeps its size (§0). */
  json?: boolean;
}

export interface PveClientOptions {
  /** `https://host:8006` or `https://host:8006/api2/json`. */
  url: string;
  /** `USER@REALM!TOKENID=SECRET`. */
  token: string;
  /** PVE ships self-signed certificates. */
  insecureTls?: boolean;
  requestTimeoutMs?: number;
}

/** Texts of PVE errors that go away by themselves (proxmox-api.md §0, §9, §10). */
const TRANSIENT_TEXTS = [
  /VM is locked \(/,
  /can't lock file .* got timeout/,
  /no quorum/,
  /cluster not ready/,
  /got timeout/,
];

/** True when retrying later may succeed: transport failures, 595/596 and proxy codes, locks, quorum. */
export function isTransientPveError(err: unknown): boolean {
  if (err instanceof PveApiError) {
    if (err.status === 0 || err.status >= 502) return true;
    return err.status === 500 && TRANSIENT_TEXTS.some((re) => re.test(err.pveMessage));
  }
  if (err instanceof PveTaskError) return TRANSIENT_TEXTS.some((re) => re.test(err.exitstatus));
  return err instanceof PveTaskTimeoutError;
}

/** The request never reached a PVE worker, so even a non-idempotent call may be repeated. */
export function wasNotProcessed(err: unknown): boolean {
  // 595 = pveproxy could not connect to the worker (AnyEvent::HTTP "connection establishment").
  return err instanceof PveApiError && ((err.status === 0 && err.code === 'ECONNREFUSED') || err.status === 595);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Form/query encoding: booleans as 1/0 (`true` is a 400), arrays as repeated keys (proxmox-api.md §0). */
export function encodeParams(params: PveParams | undefined): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) search.append(key, item);
    else search.append(key, typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
  }
  return search.toString();
}

const RETRY_DELAYS_MS = [100, 400, 1200];

export class PveClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly authorization: string;
  private readonly requestTimeoutMs: number;

  constructor(opts: PveClientOptions) {
    const url = opts.url.replace(/\/+$/, '');
    this.base = new URL(url.endsWith('/api2/json') ? url : `${url}/api2/json`);
    this.authorization = `PVEAPIToken=${opts.token}`;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, rejectUnauthorized: !opts.insecureTls })
        : new http.Agent({ keepAlive: true });
  }

  get<T>(path: string, params?: PveParams, opts?: RequestOptions): Promise<T> {
    return this.request('GET', path, params, opts);
  }
  post<T>(path: string, params?: PveParams, opts?: RequestOptions): Promise<T> {
    return this.request('POST', path, params, opts);
  }
  put<T>(path: string, params?: PveParams, opts?: RequestOptions): Promise<T> {
    return this.request('PUT', path, params, opts);
  }
  delete<T>(path: string, params?: PveParams, opts?: RequestOptions): Promise<T> {
    return this.request('DELETE', path, params, opts);
  }

  async request<T>(method: string, path: string, params?: PveParams, opts: RequestOptions = {}): Promise<T> {
    const idempotent = opts.idempotent ?? method === 'GET';
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.once(method, path, params, opts.signal, opts.json)) as T;
      } catch (err) {
        const retryable = wasNotProcessed(err) || (idempotent && isTransientPveError(err));
        const delay = RETRY_DELAYS_MS[attempt];
        if (!retryable || delay === undefined || opts.signal?.aborted) throw err;
        await sleep(delay, opts.signal);
      }
    }
  }

  /** Polls a task until it stops; `OK` and `WARNINGS: n` are success (proxmox-api.md §7). */
  async waitTask(upid: string, opts: WaitTaskOptions): Promise<TaskResult> {
    // The task runs on the node named in its UPID: UPID:{node}:{pid}:{pstart}:{starttime}:{type}:{id}:{user}:
    const [, node = '', , , , taskType = 'task'] = upid.split(':');
    const started = Date.now();
    let delay = 50;
    for (;;) {
      const status = await this.get<{ status: string; exitstatus?: string }>(
        `/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}/status`,
        undefined,
        { signal: opts.signal },
      );
      if (status.status === 'stopped') {
        const exitstatus = status.exitstatus ?? '';
        if (exitstatus === 'OK') return { upid, exitstatus, warnings: 0 };
        const warnings = /^WARNINGS: (\d+)$/.exec(exitstatus);
        if (warnings) return { upid, exitstatus, warnings: Number(warnings[1]) };
        throw new PveTaskError(upid, taskType, exitstatus);
      }
      const elapsed = Date.now() - started;
      if (elapsed > opts.timeoutMs) throw new PveTaskTimeoutError(upid, opts.timeoutMs);
      opts.onPoll?.(elapsed);
      await sleep(delay, opts.signal);
      delay = Math.min(Math.round(delay * 1.5), 1000);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private once(
    method: string,
    path: string,
    params: PveParams | undefined,
    signal?: AbortSignal,
    json = false,
  ): Promise<unknown> {
    const hasBody = method === 'POST' || method === 'PUT';
    const encoded = hasBody && json ? JSON.stringify(params ?? {}) : encodeParams(params);
    const url = new URL(this.base.href + path);
    if (!hasBody && encoded) url.search = encoded;
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        url,
        {
          method,
          agent: this.agent,
          signal,
          timeout: this.requestTimeoutMs,
          headers: {
            authorization: this.authorization,
            accept: 'application/json',
            ...(hasBody
              ? {
                  'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded',
                  'content-length': Buffer.byteLength(encoded),
                }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) =>
            reject(new PveApiError(0, err.message, undefined, method, path, (err as NodeJS.ErrnoException).code)),
          );
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: { data?: unknown; message?: string; errors?: Record<string, string> } | undefined;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              body = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status === 200) return resolve(body?.data ?? null);
            // PVE < 8.4 puts the text only in the reason phrase; 8.4 adds `message` with a newline.
            const message = (body?.message ?? res.statusMessage ?? text).trim();
            reject(new PveApiError(status, message, body?.errors ?? undefined, method, path));
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(Object.assign(new Error(`no answer within ${this.requestTimeoutMs} ms`), { code: 'ETIMEDOUT' })),
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) return reject(signal.reason);
        reject(new PveApiError(0, err.message, undefined, method, path, err.code));
      });
      if (hasBody) req.end(encoded);
      else req.end();
    });
  }
}
