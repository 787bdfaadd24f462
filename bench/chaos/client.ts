// The chaos run's HTTP client: retries what an outage breaks (connection refused/reset, 5xx,
// timeouts) with capped exponential backoff and jitter, and counts every retry and failure.
export interface CallResult<T = unknown> {
  status: number;
  body: T;
  attempts: number;
}

export class ChaosApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface ApiStats {
  calls: number;
  /** attempts beyond the first, over all calls */
  retries: number;
  /** calls that needed at least one retry */
  retriedCalls: number;
  /** calls that still failed after every retry (outage longer than the budget, or a real error) */
  failedCalls: number;
  /** expected refusals, e.g. renewing a sandbox whose lease already ended (409) */
  conflicts: number;
  /** why attempts were retried: "ECONNREFUSED", "500", "timeout", … */
  retryCauses: Record<string, number>;
  failures: string[];
}

export class ChaosClient {
  readonly stats: ApiStats = {
    calls: 0,
    retries: 0,
    retriedCalls: 0,
    failedCalls: 0,
    conflicts: 0,
    retryCauses: {},
    failures: [],
  };

  constructor(
    private readonly base: () => string,
    private readonly opts: { budgetMs: number; random: () => number },
  ) {}

  /**
   * One API call, retried until it answers with a non-5xx status or the budget runs out.
   * 4xx answers are returned, not thrown (the caller decides what is expected).
   */
  async call<T = unknown>(
    method: string,
    p: string,
    body?: unknown,
    o: { headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<CallResult<T>> {
    this.stats.calls += 1;
    const deadline = Date.now() + this.opts.budgetMs;
    let attempt = 0;
    for (;;) {
      attempt += 1;
      let cause: string;
      try {
        const res = await fetch(this.base() + p, {
          method,
          headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(o.timeoutMs ?? 20_000),
        });
        const text = await res.text();
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = text;
        }
        if (res.status < 500) {
          if (attempt > 1) this.stats.retriedCalls += 1;
          if (res.status === 409) this.stats.conflicts += 1;
          return { status: res.status, body: parsed as T, attempts: attempt };
        }
        cause = String(res.status);
      } catch (err) {
        cause = errorCause(err);
      }
      if (Date.now() + 100 > deadline) {
        this.stats.failedCalls += 1;
        if (attempt > 1) this.stats.retriedCalls += 1;
        const msg = `${method} ${p}: gave up after ${attempt} attempts (last: ${cause})`;
        this.stats.failures.push(msg);
        throw new ChaosApiError(msg);
      }
      this.stats.retries += 1;
      this.stats.retryCauses[cause] = (this.stats.retryCauses[cause] ?? 0) + 1;
      const backoff = Math.min(4000, 200 * 2 ** (attempt - 1)) * (0.5 + this.opts.random());
      await sleep(Math.min(backoff, Math.max(0, deadline - Date.now())));
    }
  }
}

function errorCause(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.cause?.code ?? e?.code ?? e?.cause?.name ?? e?.name ?? 'error';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
