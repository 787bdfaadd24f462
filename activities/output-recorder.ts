// Where a streamed or background command's output goes on the worker: into exec_output, as soon
// as it is read. An insert starts the moment output arrives while none is in flight, so the first
// byte is not held back; output that arrives during an insert is batched into the next one.
import type pg from 'pg';
import type { OutputSink } from '../hypervisors/types';
import { componentLogger } from '../log/logger';
import { appendOutput, type OutputChunk, type OutputStreamName } from '../registry/exec-output';

export interface OutputRecorderOptions {
  /** Output kept per exec; past it the rest is dropped and a notice says so. */
  maxRetainedBytes: number;
  /** Bytes per stored chunk (a follower's SSE event). */
  chunkBytes: number;
  /** Pauses between tries of an insert that failed (the registry down); then the batch is dropped. */
  retryDelaysMs: number[];
}

const log = componentLogger('data-plane');

export const DEFAULT_RECORDER_OPTIONS: OutputRecorderOptions = {
  maxRetainedBytes: 64 * 1024 * 1024,
  chunkBytes: 256 * 1024,
  retryDelaysMs: [100, 250, 500, 1000, 2000, 4000, 8000],
};

export class OutputRecorder {
  private seq = 0;
  private retained = 0;
  private capped = false;
  private pending: OutputChunk[] = [];
  private inFlight: Promise<void> | null = null;
  /** Batches that could not be written even after retries. */
  lostChunks = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly sandboxId: string,
    private readonly execId: string,
    private readonly opts: OutputRecorderOptions = DEFAULT_RECORDER_OPTIONS,
  ) {}

  /** The driver's OutputSink: synchronous, never throws. */
  readonly sink: OutputSink = (stream, chunk) => {
    if (this.capped || chunk.length === 0) return;
    const room = this.opts.maxRetainedBytes - this.retained;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.retained += kept.length;
    this.add(stream, kept);
    if (kept.length < chunk.length) {
      this.capped = true;
      const mib = Math.round(this.opts.maxRetainedBytes / (1024 * 1024));
      this.add('notice', Buffer.from(`output past ${mib} MiB is not kept (the command goes on)`));
    }
    this.kick();
  };

  /** Resolves once everything handed over so far is written (or given up on). */
  async drain(): Promise<void> {
    while (this.inFlight || this.pending.length > 0) {
      this.kick();
      await this.inFlight;
    }
  }

  private add(stream: OutputStreamName, data: Buffer): void {
    // Output of the same stream joins the last chunk while that is not yet written and has room.
    let at = 0;
    const last = this.pending.at(-1);
    if (last && last.stream === stream && last.data.length < this.opts.chunkBytes) {
      at = Math.min(this.opts.chunkBytes - last.data.length, data.length);
      last.data = Buffer.concat([last.data, data.subarray(0, at)]);
    }
    for (; at < data.length; at += this.opts.chunkBytes) {
      this.pending.push({ seq: ++this.seq, stream, data: Buffer.from(data.subarray(at, at + this.opts.chunkBytes)) });
    }
  }

  private kick(): void {
    if (this.inFlight || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.inFlight = this.write(batch).finally(() => {
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
          this.lostChunks += batch.length;
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
