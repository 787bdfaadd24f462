// A counting semaphore whose waiters can give up (AbortSignal).

export class Semaphore {
  private free: number;
  private readonly queue: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves with a release function once a slot is free; calling it more than once is harmless. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((granted, reject) => {
        const onGrant = () => {
          signal?.removeEventListener('abort', onAbort);
          granted();
        };
        const onAbort = () => {
          const i = this.queue.indexOf(onGrant);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal?.reason);
        };
        this.queue.push(onGrant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) {
        next();
      } // hand the slot straight over
      else {
        this.free++;
      }
    };
  }
}
