// A lock for update handlers whose awaits must not interleave (stop and start: each calls the
// driver, then moves the state). First come, first served. A free lock is taken synchronously, so
// the first caller's activity is scheduled exactly when it was before there was a lock.

export class Mutex {
  private held = false;
  private readonly queue: (() => void)[] = [];

  get locked(): boolean {
    return this.held;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.held) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.held = true;
    try {
      return await fn();
    } finally {
      // Handed straight to the next in line: nobody can slip in between.
      const next = this.queue.shift();
      if (next) next();
      else this.held = false;
    }
  }
}
