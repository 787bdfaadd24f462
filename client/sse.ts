// Server-Sent Events read from a fetch body, by the EventSource spec's parsing rules: fields,
// comments, a blank line dispatches, one optional space after the colon. A message cut off by a
// dropped connection (no blank line yet) is never dispatched.
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

export class SseParser {
  /** `retry:` as the server last sent it. */
  retry: number | undefined;
  /** Comment lines seen (heartbeats). */
  comments = 0;
  private buffer = '';
  private message: { id?: string; event?: string; data: string[] } = { data: [] };

  /** The messages the text completes. */
  feed(text: string): SseMessage[] {
    const out: SseMessage[] = [];
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A lone \r at the very end may be the first half of \r\n: wait for the next piece.
      if (nl === this.buffer.length - 1 && this.buffer.endsWith('\r')) break;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith('\r\n', nl) ? 2 : 1));
      const m = this.line(line);
      if (m) out.push(m);
    }
    return out;
  }

  /** At the end of the body: a final lone \r ends its line. */
  end(): SseMessage[] {
    return this.buffer.endsWith('\r') ? this.feed('\n') : [];
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') {
      const m = this.message;
      this.message = { data: [] };
      return m.data.length ? { id: m.id, event: m.event ?? 'message', data: m.data.join('\n') } : undefined;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return undefined;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.message.data.push(value);
    else if (field === 'event') this.message.event = value;
    else if (field === 'id') this.message.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }
}

/** Every message of a body until it ends; a read error (a dropped connection) is thrown. */
export async function* readSse(body: ReadableStream<Uint8Array>, parser = new SseParser()): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.feed(decoder.decode(value, { stream: true }));
    }
    yield* parser.feed(decoder.decode());
    yield* parser.end();
  } finally {
    // Stops the download when the consumer leaves early (break, throw).
    await reader.cancel().catch(() => {});
  }
}
