// Server-Sent Events on an express response: the headers, one frame per event, a heartbeat, and
// a bound on what may wait in the socket's buffer, so one stalled reader cannot grow our memory.
import type { Response } from 'express';
import type { FeedEvent } from '../../registry/event-feed';

export interface SseOptions {
  /** The reconnect delay EventSource clients are told to use (`retry:`). */
  retryMs: number;
  /** A comment line this often keeps proxies and load balancers from closing an idle stream. */
  heartbeatMs: number;
  /** Bytes the socket may hold unsent; beyond that the stream is cut (the client resumes). */
  maxBufferedBytes: number;
  /** A backlog waits this long at most for a reader to take what was sent, then cuts the stream. */
  stallMs: number;
}

export class SseStream {
  private readonly heartbeat: NodeJS.Timeout;
  private ended = false;
  /** Bytes written this tick: node holds them (corked) until the next, so they are not yet unread. */
  private thisTick = 0;
  /** The id of the last event written: what the client will send back as Last-Event-ID. */
  lastId: string | undefined;

  constructor(
    private readonly res: Response,
    private readonly opts: SseOptions,
  ) {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache');
    // nginx buffers proxied responses unless told not to: events would arrive in bursts.
    res.setHeader('X-Accel-Buffering', 'no');
    res.socket?.setNoDelay(true);
    res.flushHeaders();
    res.write(`retry: ${opts.retryMs}\n\n`);
    this.heartbeat = setInterval(() => this.write(': keepalive\n\n'), opts.heartbeatMs);
    this.heartbeat.unref();
    res.once('close', () => this.stop());
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /** Writes one event; false when the stream is (now) closed. */
  send(e: FeedEvent): boolean {
    return this.event(e.type, e, e.id);
  }

  /** Writes one event of any kind (an exec's output, its end); `id` only for events a client resumes after. */
  event(type: string, data: unknown, id?: string): boolean {
    // JSON.stringify escapes line breaks, so `data:` stays one line.
    const frame = `${id !== undefined ? `id: ${id}\n` : ''}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
    if (!this.write(frame)) return false;
    if (id !== undefined) this.lastId = id;
    return true;
  }

  /** Whether the socket's buffer has room (false: wait for drained() before writing more). */
  get hasRoom(): boolean {
    return this.res.writableLength < this.opts.maxBufferedBytes / 2;
  }

  /** Resolves when the buffer has emptied (or the stream closed); false after `timeoutMs` without. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.ended || this.res.writableLength === 0) return Promise.resolve(!this.ended);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.res.off('drain', onDrain);
        this.res.off('close', onClose);
        resolve(ok && !this.ended);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.res.on('drain', onDrain);
      this.res.on('close', onClose);
    });
  }

  /** Ends the stream normally (nothing more will come). */
  end(): void {
    if (this.ended) return;
    this.stop();
    this.res.end();
  }

  /** Cuts the stream (a reader too slow, or the server shutting down): the client resumes from its last id. */
  cut(): void {
    if (this.ended) return;
    this.stop();
    this.res.destroy();
  }

  private write(frame: string): boolean {
    if (this.ended) return false;
    if (this.res.writableLength - this.thisTick > this.opts.maxBufferedBytes) {
      this.cut();
      return false;
    }
    if (this.thisTick === 0) process.nextTick(() => (this.thisTick = 0));
    this.thisTick += Buffer.byteLength(frame);
    this.res.write(frame);
    return true;
  }

  private stop(): void {
    this.ended = true;
    clearInterval(this.heartbeat);
    this.onStop?.();
    this.onStop = undefined;
  }

  /** Called once when the stream ends for any reason (client gone, ended, cut). */
  onStop: (() => void) | undefined;
}
