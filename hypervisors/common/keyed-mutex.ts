// One operation at a time per key (e.g. a sandbox id), in this process.

export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tailPromise = result.catch(() => undefined);
    this.tails.set(key, tailPromise);
    try {
      return await result;
    } finally {
      // The last in line cleans up, so idle keys do not pile up in the map.
      if (this.tails.get(key) === tailPromise) this.tails.delete(key);
    }
  }
}
