// A sandbox's cgroup on the host: created with its limits, checked, emptied and removed.
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exists } from '../common/files';
import { cgroupPlan, sandboxCgroupDirs, type CgroupLimits, type CgroupRecord } from './cgroups-plan';
import type { CgroupSupport } from './cgroups-detect';
import { BusyError } from '../errors';

/** The record for a new sandbox `id` under `parentPath`, or null where no cgroup can be used. */
export function newCgroupRecord(support: CgroupSupport, parentPath: string, id: string): CgroupRecord | null {
  const p = path.join(parentPath, id);
  if (support.version === 1) return { version: 1, path: p, mounts: support.mounts };
  if (support.version === 2) return { version: 2, path: p, mount: support.mount, controllers: support.controllers };
  return null;
}

/** Creates the cgroup (and, for v2, hands the controllers down to it) and writes its limits. Idempotent. */
export async function ensureCgroup(record: CgroupRecord, limits: CgroupLimits, hostPidsCap?: number): Promise<void> {
  const plan = cgroupPlan(record, limits, hostPidsCap);
  for (const dir of plan.mkdirs) await mkdir(dir, { recursive: true });
  for (const w of plan.writes) {
    if (w.ifPresent && !(await exists(w.file))) continue;
    try {
      await writeFile(w.file, w.value);
    } catch (err) {
      throw new Error(`cannot write ${w.value} to ${w.file}: ${(err as Error).message}`);
    }
  }
}

export async function cgroupExists(record: CgroupRecord): Promise<boolean> {
  for (const dir of sandboxCgroupDirs(record)) if (!(await exists(dir))) return false;
  return true;
}

/**
 * SIGKILLs every process left in the cgroup and removes it; already gone counts as removed.
 */
export async function removeCgroup(record: CgroupRecord, id: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await emptyCgroup(record, id, timeoutMs);
  for (const dir of sandboxCgroupDirs(record)) {
    for (;;) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY: a process that just died is still charged to it until it is reaped.
        if (code !== 'EBUSY' || Date.now() > deadline) {
          throw new BusyError(`sandbox ${id}: cannot remove cgroup ${dir}: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
}

/**
 * Kills every process in the cgroup and waits until it is empty; the cgroup itself stays. v2 has
 * cgroup.kill (Linux 5.14); v1 reads cgroup.procs and kills pid by pid until it stays empty, as a
 * fork loop refills it. (A pid read there could in theory exit and be reused before the kill:
 * the window is microseconds and needs the pid space to wrap meanwhile.)
 */
export async function emptyCgroup(record: CgroupRecord, id: string, timeoutMs = 10_000): Promise<void> {
  const dirs = sandboxCgroupDirs(record);
  // A sandbox's record names its own cgroup: never act on anything else (a hierarchy root, say).
  for (const dir of dirs) {
    if (path.basename(dir) !== id || record.path.split('/').includes('..')) {
      throw new Error(`sandbox ${id}: recorded cgroup ${dir} is not this sandbox's; refusing to empty it`);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const dir of dirs) {
    if (!(await exists(dir))) continue;
    const kill = path.join(dir, 'cgroup.kill');
    if (await exists(kill)) await writeFile(kill, '1');
    for (let pids = await members(dir); pids.length > 0; pids = await members(dir)) {
      if (Date.now() > deadline) {
        throw new BusyError(`sandbox ${id}: processes ${pids.join(', ')} still in cgroup ${dir} after SIGKILL`);
      }
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* exited meanwhile */
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function members(dir: string): Promise<number[]> {
  try {
    return (await readFile(path.join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // removed meanwhile
  }
}
