// A small Server-Sent Events client for benchmarks and tests: Node's fetch, and the parsing rules of the
// EventSource spec (fields, comments, blank line dispatches, one optional space after the colon).
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

export class SseClient {
  /** `retry:` as the server last sent it. */
  retry: number | undefined;
  /** Comment lines seen (heartbeats). */
  comments = 0;
  private buffer = '';
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
      if (got.done) this.ended = true;
      else this.feed(this.decoder.decode(got.value, { stream: true }));
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

  private message: { id?: string; event?: string; data: string[] } = { data: [] };

  private feed(text: string): void {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith('\r\n', nl) ? 2 : 1));
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      const m = this.message;
      if (m.data.length) this.pending.push({ id: m.id, event: m.event ?? 'message', data: m.data.join('\n') });
      this.message = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.message.data.push(value);
    else if (field === 'event') this.message.event = value;
    else if (field === 'id') this.message.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}
