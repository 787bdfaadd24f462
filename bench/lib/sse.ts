// A small Server-Sent Events client for benchmarks and tests: Node's fetch, a timeout per read, and
// the typed client's parser (client/sse.ts).
import { SseParser, type SseMessage } from '../../client/sse';

export type { SseMessage };

export class SseClient {
  private readonly parser = new SseParser();
  private pending: SseMessage[] = [];
  private ended = false;
  private readonly decoder = new TextDecoder();

  private constructor(
    readonly res: Response,
    private readonly abort: AbortController,
  ) {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
    return new SseClient(res, abort);
  }

  /** `retry:` as the server last sent it. */
  get retry(): number | undefined {
    return this.parser.retry;
  }

  /** Comment lines seen (heartbeats). */
  get comments(): number {
    return this.parser.comments;
  }

  get status(): number {
    return this.res.status;
  }

  /** The next message; null once the server has ended the stream. Throws after timeoutMs. */
  async next(timeoutMs = 30_000): Promise<SseMessage | null> {
    const reader = this.reader();
    const deadline = Date.now() + timeoutMs;
    while (this.pending.length === 0 && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SSE message within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left)));
      const read = this.inFlight ?? (this.inFlight = reader.read());
      const got = await Promise.race([read, timeout]);
      clearTimeout(timer);
      if (got === 'timeout') continue;
      this.inFlight = undefined;
      if (got.done) {
        this.ended = true;
        this.pending.push(...this.parser.end());
      } else {
        this.pending.push(...this.parser.feed(this.decoder.decode(got.value, { stream: true })));
      }
    }
    return this.pending.shift() ?? null;
  }

  /** Messages until `stop` says so (inclusive), or the stream ends. */
  async until(stop: (m: SseMessage, all: SseMessage[]) => boolean, timeoutMs = 60_000): Promise<SseMessage[]> {
    const all: SseMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - Date.now()));
      if (!m) return all;
      all.push(m);
      if (stop(m, all)) return all;
    }
  }

  /** Every message until the server ends the stream. */
  rest(timeoutMs = 60_000): Promise<SseMessage[]> {
    return this.until(() => false, timeoutMs);
  }

  close(): void {
    this.abort.abort();
    this.ended = true;
  }

  private inFlight: ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']> | undefined;
  private streamReader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  private reader(): ReadableStreamDefaultReader<Uint8Array> {
    this.streamReader ??= this.res.body!.getReader();
    return this.streamReader;
  }
}
