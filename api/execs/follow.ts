// One exec's output as Server-Sent Events: registered with the hub first (so no notification is
// missed), then everything after the client's last seq from the registry, then whatever each
// wake-up brings, and the terminal event once the exec has ended. seq only increases on the wire.
import { isUtf8 } from 'node:buffer';
import type { Response } from 'express';
import { componentLogger } from '../../log/logger';
import { readOutput, type OutputChunk } from '../../registry/exec-output';
import { DEFAULT_HUB_OPTIONS } from '../events/hub';
import { SseStream } from '../events/sse';
import type { EndProbe } from './ends';
import type { ExecOutputHub } from './output-hub';

const log = componentLogger('exec-output');

/** Chunks read per query: a worker's chunks are small, and the socket's bound is 1 MiB anyway. */
const PAGE = 64;

export interface ExecFollowRequest {
  sandboxId: string;
  execId: string;
  /** Output after this seq (0: from the start). */
  after: number;
  /** Whose stream it is (streams are capped per owner). */
  owner: string;
}

/** The text of a chunk when it is valid UTF-8 (JSON carries it as is), else its bytes in base64. */
export function chunkBody(data: Buffer): { text: string } | { base64: string } {
  return isUtf8(data) ? { text: data.toString('utf8') } : { base64: data.toString('base64') };
}

export class ExecFollower {
  private woken = false;
  private waiting: (() => void) | undefined;
  private unwatch: (() => void) | undefined;
  private stream: SseStream | undefined;

  constructor(
    private readonly hub: ExecOutputHub,
    private readonly req: ExecFollowRequest,
  ) {}

  /** Joins the hub; throws ExecStreamLimitError before anything is written. */
  async register(): Promise<void> {
    this.unwatch = await this.hub.watch(this.req.sandboxId, this.req.execId, this.req.owner, {
      wake: () => this.wake(),
      close: () => this.stream?.cut(),
    });
  }

  /** Leaves the hub (a refusal after register(), or the stream's end). */
  release(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.wake();
  }

  /**
   * Opens the stream on `res` and writes in the background until the end (then `end()`'s event)
   * or until the client leaves. `first`: an event written before any output (the live `start`).
   */
  start(res: Response, end: EndProbe, opts: { first?: { event: string; data: unknown }; onStop?: () => void }) {
    if (!res.socket || res.socket.destroyed) {
      this.release();
      opts.onStop?.();
      return;
    }
    const stream = new SseStream(res, DEFAULT_HUB_OPTIONS.sse);
    this.stream = stream;
    stream.onStop = () => {
      this.release();
      opts.onStop?.();
    };
    if (opts.first) stream.event(opts.first.event, opts.first.data);
    void this.pump(stream, end).catch((err: unknown) => {
      // Headers are sent: the client sees the stream cut and resumes from its last id.
      log.warn({ err, sandboxId: this.req.sandboxId, execId: this.req.execId }, 'exec output stream failed');
      stream.cut();
    });
  }

  /** Something new may be in the registry (or the end is known, or the stream closed). */
  wake(): void {
    this.woken = true;
    this.waiting?.();
  }

  private async pump(stream: SseStream, end: EndProbe): Promise<void> {
    let after = this.req.after;
    const sendAll = async (): Promise<boolean> => {
      for (;;) {
        const chunks = await readOutput(this.hub.pool, this.req.sandboxId, this.req.execId, after, PAGE);
        for (const c of chunks) {
          if (!send(stream, c)) return false;
          after = c.seq;
          if (!stream.hasRoom && !(await stream.drained(DEFAULT_HUB_OPTIONS.sse.stallMs))) {
            stream.cut();
            return false;
          }
        }
        if (chunks.length < PAGE) return stream.isOpen;
      }
    };
    for (;;) {
      this.woken = false;
      if (!(await sendAll())) return;
      const ended = await end();
      if (ended) {
        // The output was all committed before the end was: one last read, then the end.
        if (!(await sendAll())) return;
        stream.event(ended.event, ended.data);
        stream.end();
        return;
      }
      await this.sleep(this.hub.opts.safetyPollMs);
      if (!stream.isOpen) return;
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiting = () => {
        this.waiting = undefined;
        done();
      };
    });
  }
}

function send(stream: SseStream, c: OutputChunk): boolean {
  const id = String(c.seq);
  if (c.stream === 'notice') return stream.event('notice', { message: c.data.toString('utf8') }, id);
  return stream.event(c.stream, { seq: c.seq, ...chunkBody(c.data) }, id);
}
