// Where a streamed or background command's output goes on the worker: into exec_output, as soon
// as it is read. An insert starts the moment output arrives while none is in flight, so the first
// byte is not held back; output that arrives during an insert is batched into the next one.
// Memory is bounded: output waiting for the registry (slower than the command, or down) is held up
// to a budget per exec and one per worker; past either it is dropped, and a notice says how much.
import type pg from 'pg';
import type { OutputFlow, OutputSink } from '../hypervisors/types';
import { componentLogger } from '../log/logger';
import { appendOutput, type OutputChunk, type OutputStreamName } from '../registry/exec-output';

export interface OutputRecorderOptions {
  /** Output kept per exec; past it the rest is dropped and a notice says so. */
  maxRetainedBytes: number;
  /** Output of one exec waiting to be written; past it output is dropped until the writes catch up. */
  maxPendingBytes: number;
  /** Bytes per stored chunk (a follower's SSE event). */
  chunkBytes: number;
  /** Pauses between tries of an insert that failed (the registry down); then the batch is dropped. */
  retryDelaysMs: number[];
}

const log = componentLogger('data-plane');

export const DEFAULT_RECORDER_OPTIONS: OutputRecorderOptions = {
  maxRetainedBytes: 64 * 1024 * 1024,
  maxPendingBytes: 16 * 1024 * 1024,
  chunkBytes: 256 * 1024,
  retryDelaysMs: [100, 250, 500, 1000, 2000, 4000, 8000],
};

/** Output waiting to be written, all of this worker's commands together (1,000 slots × 16 MiB would be 16 GiB). */
const WORKER_PENDING_BUDGET = 256 * 1024 * 1024;
let workerPending = 0;

/** A chunk on its way: its parts are joined once, when it is written (no copy per small write). */
interface PendingChunk {
  seq: number;
  stream: OutputStreamName;
  parts: Buffer[];
  bytes: number;
}

const MiB = 1024 * 1024;

export class OutputRecorder {
  private seq = 0;
  private retained = 0;
  private capped = false;
  private pending: PendingChunk[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | null = null;
  /** Bytes dropped since the last notice: no room to hold them. */
  private dropped = 0;
  /** Bytes the registry refused since the last notice (said with the next output it takes). */
  private refused = 0;
  /** Bytes lost in all, for the activity's log. */
  lostBytes = 0;
  /** The command's flow, when its driver can hold it back: then nothing is dropped for want of room. */
  private flow: OutputFlow | null = null;
  private paused = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly sandboxId: string,
    private readonly execId: string,
    private readonly opts: OutputRecorderOptions = DEFAULT_RECORDER_OPTIONS,
  ) {}

  /** The driver's flow control (StreamExecRequest.onStart): past maxPendingBytes waiting, the command is paused. */
  readonly attach = (flow: OutputFlow): void => {
    this.flow = flow;
  };

  /** The driver's OutputSink: synchronous, never throws. */
  readonly sink: OutputSink = (stream, chunk) => {
    if (this.capped || chunk.length === 0) return;
    const room = this.opts.maxRetainedBytes - this.retained;
    let kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    // A command that can be held back is, at maxPendingBytes; what arrives meanwhile (a pipe's worth)
    // is kept. Only the worker's budget, a last resort, drops output then.
    const ownRoom = this.flow ? Number.POSITIVE_INFINITY : this.opts.maxPendingBytes - this.pendingBytes;
    const holdable = Math.min(ownRoom, WORKER_PENDING_BUDGET - workerPending);
    if (kept.length > holdable) {
      this.drop(kept.length - Math.max(0, holdable));
      kept = kept.subarray(0, Math.max(0, holdable));
    }
    this.retained += kept.length;
    this.add(stream, kept);
    if (this.flow && !this.paused && this.pendingBytes >= this.opts.maxPendingBytes) {
      this.paused = true;
      this.flow.pause();
    }
    if (chunk.length > room) {
      this.capped = true;
      this.notice(`output past ${Math.round(this.opts.maxRetainedBytes / MiB)} MiB is not kept (the command goes on)`);
    }
    this.kick();
  };

  /** Resolves once everything handed over so far is written (or given up on). */
  async drain(): Promise<void> {
    while (this.inFlight || this.pending.length > 0 || this.dropped > 0) {
      this.kick();
      await this.inFlight;
    }
  }

  private drop(bytes: number): void {
    this.dropped += bytes;
    this.lostBytes += bytes;
  }

  private notice(text: string): void {
    this.add('notice', Buffer.from(text));
  }

  private add(stream: OutputStreamName, data: Buffer): void {
    if (data.length === 0) return;
    // Output of the same stream joins the last chunk while that is not yet written and has room.
    let at = 0;
    const last = this.pending.at(-1);
    if (last && last.stream === stream && last.bytes < this.opts.chunkBytes) {
      at = Math.min(this.opts.chunkBytes - last.bytes, data.length);
      last.parts.push(data.subarray(0, at));
      last.bytes += at;
    }
    for (; at < data.length; at += this.opts.chunkBytes) {
      const part = data.subarray(at, at + this.opts.chunkBytes);
      this.pending.push({ seq: ++this.seq, stream, parts: [part], bytes: part.length });
    }
    this.pendingBytes += data.length;
    workerPending += data.length;
  }

  private kick(): void {
    if (this.inFlight) return;
    // Said once the writes have caught up, in the place of what was dropped.
    if (this.dropped > 0) {
      this.notice(`${this.dropped} bytes of output were lost here (they came faster than they could be stored)`);
      this.dropped = 0;
    }
    if (this.pending.length === 0) return;
    if (this.refused > 0) {
      this.notice(`${this.refused} bytes of output were lost here (the registry was unavailable)`);
      this.refused = 0;
    }
    const batch = this.pending;
    this.pending = [];
    const bytes = batch.reduce((n, c) => n + c.bytes, 0);
    this.inFlight = this.write(
      batch.map((c) => ({ seq: c.seq, stream: c.stream, data: Buffer.concat(c.parts) })),
    ).finally(() => {
      this.pendingBytes -= bytes;
      workerPending -= bytes;
      if (this.paused && this.pendingBytes <= this.opts.maxPendingBytes / 4) {
        this.paused = false;
        this.flow?.resume();
      }
      this.inFlight = null;
      this.kick();
    });
  }

  private async write(batch: OutputChunk[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await appendOutput(this.pool, this.sandboxId, this.execId, batch);
      } catch (err) {
        const delay = this.opts.retryDelaysMs[attempt];
        if (delay === undefined) {
          const bytes = batch.reduce((n, c) => n + c.data.length, 0);
          this.refused += bytes;
          this.lostBytes += bytes;
          const error = (err as Error).message;
          log.warn(
            { sandboxId: this.sandboxId, execId: this.execId, error },
            'exec output lost: the registry refused it',
          );
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
