// Process drivers for driver-level tests: each made on a fresh state dir with the test file's
// defaults, and whatever a test made destroyed after it — even when it fails half-way — before
// each driver removes its (now empty) parent cgroup, as a worker does when it stops.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { hasExited, processStat } from '../../hypervisors/common/proc-identity';
import { ProcessHypervisor, type ProcessOptions } from '../../hypervisors/process/driver';

export function processDrivers(prefix: string, defaults: Partial<ProcessOptions>) {
  const made: ProcessHypervisor[] = [];
  const tempDir = () => mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  afterEach(async () => {
    for (const d of made.splice(0)) {
      for (const vm of await d.list()) await d.destroy(vm.id);
      await d.close();
    }
  });
  const driver = (stateDir = tempDir(), opts: Partial<ProcessOptions> = {}) => {
    const d = new ProcessHypervisor({ stateDir, ...defaults, ...opts });
    made.push(d);
    return d;
  };
  return { driver, tempDir };
}

/** Exited (a zombie only waits for its parent, on some hosts a slow init, to reap it). */
export async function gone(pid: unknown): Promise<boolean> {
  const stat = await processStat(pid as number);
  return stat === null || hasExited(stat);
}
