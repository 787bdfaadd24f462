// An SSE stream that survives a dropped connection: it reopens with the last id received
// (Last-Event-ID) and skips anything at or before it, so a message is never yielded twice.
import { HourglassApiError } from './errors';
import { readSse, type SseMessage } from './sse';

export interface ResumableStream {
  /**
   * Opens the stream: first with lastId undefined, then after each drop with the last id received
   * (or still undefined when none had come). The first open is never retried by this helper: it
   * may start something (POST /exec runs the command) that a retry would start twice.
   */
  open(lastId: string | undefined, reopen: boolean, signal: AbortSignal): Promise<Response>;
  /** This message ends the stream: nothing is read after it. */
  isLast(m: SseMessage): boolean;
  signal?: AbortSignal;
}

/** Reopens in a row without a message in between before giving up. */
const MAX_REOPENS = 6;
const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

export async function* followSse(s: ResumableStream): AsyncGenerator<SseMessage> {
  const abort = new AbortController();
  const onAbort = () => abort.abort(s.signal?.reason);
  if (s.signal?.aborted) throw s.signal.reason;
  s.signal?.addEventListener('abort', onAbort, { once: true });
  let lastId: string | undefined;
  let failures = 0;
  let lastFailure: unknown;
  try {
    for (let reopen = false; ; reopen = true) {
      if (reopen) {
        if (failures >= MAX_REOPENS) throw interrupted(failures, lastFailure);
        await sleep(Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures), abort.signal);
        failures++;
      }
      let res: Response;
      try {
        res = await s.open(lastId, reopen, abort.signal);
      } catch (err) {
        if (abort.signal.aborted || !reopen || !retryable(err)) throw err;
        lastFailure = err;
        continue;
      }
      // 204: the server says nothing more can come (a destroyed sandbox's event stream).
      if (res.status === 204 || !res.body) return;
      try {
        for await (const m of readSse(res.body)) {
          if (m.id !== undefined) {
            if (lastId !== undefined && compareIds(m.id, lastId) <= 0) continue;
            lastId = m.id;
          }
          failures = 0;
          yield m;
          if (s.isLast(m)) return;
        }
        lastFailure = new Error('the server ended the stream before its last message');
      } catch (err) {
        if (abort.signal.aborted) throw s.signal?.reason ?? err;
        lastFailure = err; // a dropped connection: reopen
      }
    }
  } finally {
    s.signal?.removeEventListener('abort', onAbort);
    abort.abort(); // the consumer left (break, throw, return): close the connection
  }
}

/** Decimal ids (exec seqs, event ids) numerically, past 2^53 too; anything else only by equality. */
function compareIds(a: string, b: string): number {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return a === b ? 0 : 1;
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** No answer, or a server/proxy fault: worth another try. A 4xx is the answer. */
function retryable(err: unknown): boolean {
  return err instanceof HourglassApiError && (err.status === 0 || err.status >= 500);
}

function interrupted(reopens: number, cause: unknown): HourglassApiError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new HourglassApiError(0, 'stream_interrupted', `the stream dropped and ${reopens} reopens failed (${why})`, {
    reopens,
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
