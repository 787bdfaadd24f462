// Bridges a command's output, which arrives as fast as the command writes it, to an async sink
// (a database insert, an HTTP response) that takes one chunk at a time: chunks are handed over in
// order, and the command is held back (pause) while too much waits, so a slow reader costs a
// bounded amount of memory whatever the size of the transfer.

/** What a producer offers to be held back. */
export interface Flow {
  pause(): void;
  resume(): void;
}

const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

export class OrderedSink {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private bytes = 0;
  private draining: Promise<void> | null = null;
  private flow: Flow | null = null;
  private paused = false;
  private failure: { error: unknown } | null = null;

  /** `onError` hears the sink's first failure (to stop the producer); later chunks are dropped. */
  constructor(
    private readonly sink: (chunk: Buffer) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** The producer's flow control, once it has one. */
  attach(flow: Flow): void {
    this.flow = flow;
    if (this.paused) flow.pause();
  }

  /** Bytes handed to the sink so far. */
  get size(): number {
    return this.bytes;
  }

  push(chunk: Buffer): void {
    if (this.failure) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.paused && this.queued > HIGH_WATER) {
      this.paused = true;
      this.flow?.pause();
    }
    this.draining ??= this.drain();
  }

  /** Resolves once every chunk pushed so far is in the sink; rejects with the sink's failure. */
  async done(): Promise<void> {
    while (this.draining) await this.draining;
    if (this.failure) throw this.failure.error;
  }

  private async drain(): Promise<void> {
    try {
      for (let chunk = this.queue.shift(); chunk; chunk = this.queue.shift()) {
        this.queued -= chunk.length;
        if (this.paused && this.queued < LOW_WATER) this.setRunning();
        await this.sink(chunk);
        this.bytes += chunk.length;
      }
    } catch (error) {
      this.failure = { error };
      this.queue.length = 0;
      this.queued = 0;
      this.setRunning(); // a held-back producer could not end
      this.onError(error);
    } finally {
      this.draining = null;
    }
  }

  private setRunning(): void {
    this.paused = false;
    this.flow?.resume();
  }
}
