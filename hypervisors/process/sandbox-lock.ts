// One operation at a time per sandbox, across every process that shares a state dir: two workers
// (or an activity attempt the server already timed out and its retry) must never both start a
// namespace holder for the same sandbox, nor create while another destroys.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { KeyedMutex } from '../common/keyed-mutex';

/** A lock not refreshed for this long belongs to a dead process and may be taken over. */
const STALE_MS = 10_000;

export class SandboxLocks {
  /** Callers in this process queue here first, so the file lock sees one of them at a time. */
  private readonly local = new KeyedMutex();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  run<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(id, async () => {
      let lost: Error | undefined;
      const release = await lockfile.lock(path.join(this.dir, lockName(id)), {
        realpath: false, // the sandbox's directory may not exist (yet, or any more)
        stale: STALE_MS,
        update: STALE_MS / 4,
        // Another process's create or destroy takes seconds at most; wait for it.
        retries: { retries: 600, factor: 1.2, minTimeout: 5, maxTimeout: 200 },
        // The default throws from a timer and kills the process: record it, fail this operation.
        onCompromised: (err) => (lost = err),
      });
      try {
        const result = await fn();
        if (lost) throw new Error(`sandbox ${id}: lock lost while operating (${lost.message}); retry`);
        return result;
      } finally {
        await release().catch(() => {});
      }
    });
  }
}

/** Any id, even one a driver would refuse, names a file inside the locks directory and nowhere else. */
function lockName(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 32);
}
