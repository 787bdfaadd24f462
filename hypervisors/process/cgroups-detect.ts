// Which cgroup hierarchy can limit sandboxes on this host: v2 where the unified hierarchy has the
// controllers, v1 otherwise, or none (with the reason, said in the banner and in `isolation`).
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CGROUP_CONTROLLERS, v2EnableWrites, type CgroupController } from './cgroups-plan';
import type { MountEntry } from './mountinfo';

export type CgroupSupport =
  | { version: 1; mounts: Partial<Record<CgroupController, string>> }
  | { version: 2; mount: string; controllers: CgroupController[] }
  | { version: null; reason: string };

/** The host operations detection needs; tests pass their own to exercise the decisions. */
export interface CgroupProbe {
  /** Contents of `<v2 mount>/cgroup.controllers`, or null when unreadable. */
  v2Controllers(mount: string): string[] | null;
  writable(dir: string): boolean;
  /** Creates `parentPath` under a v2 mount and enables the controllers down to it; throws why not. */
  prepareV2Parent(mount: string, parentPath: string, controllers: CgroupController[]): void;
}

/**
 * v2 needs memory and pids delegated down to `parentPath` (cpu is used when present); v1 needs at
 * least one writable hierarchy among memory, pids and cpu. A hybrid host (v1 controllers, an
 * empty v2 mount, as here) uses v1.
 */
export function detectCgroups(mounts: MountEntry[], parentPath: string, probe: CgroupProbe = hostProbe): CgroupSupport {
  const notes: string[] = [];

  for (const m of mounts.filter((e) => e.fsType === 'cgroup2')) {
    const available = probe.v2Controllers(m.mountPoint);
    if (!available) {
      notes.push(`cgroup v2 at ${m.mountPoint}: cgroup.controllers unreadable`);
      continue;
    }
    const controllers = CGROUP_CONTROLLERS.filter((c) => available.includes(c));
    if (!controllers.includes('memory') || !controllers.includes('pids')) {
      notes.push(`cgroup v2 at ${m.mountPoint} lacks memory/pids (has: ${available.join(' ') || 'none'})`);
      continue;
    }
    if (!probe.writable(m.mountPoint)) {
      notes.push(`cgroup v2 at ${m.mountPoint} is not writable by uid ${process.getuid?.()}`);
      continue;
    }
    try {
      probe.prepareV2Parent(m.mountPoint, parentPath, controllers);
      return { version: 2, mount: m.mountPoint, controllers };
    } catch (err) {
      notes.push(`cgroup v2 at ${m.mountPoint} unusable: ${(err as Error).message}`);
    }
  }

  const v1: Partial<Record<CgroupController, string>> = {};
  const unwritable: string[] = [];
  for (const m of mounts.filter((e) => e.fsType === 'cgroup')) {
    for (const c of CGROUP_CONTROLLERS) {
      if (!m.superOptions.includes(c) || v1[c]) continue;
      if (probe.writable(m.mountPoint)) v1[c] = m.mountPoint;
      else unwritable.push(m.mountPoint);
    }
  }
  if (Object.keys(v1).length > 0) return { version: 1, mounts: v1 };
  if (unwritable.length) {
    notes.push(
      `cgroup v1 hierarchies not writable by uid ${process.getuid?.()}: ${[...new Set(unwritable)].join(', ')}`,
    );
  }
  if (notes.length === 0) notes.push('no cgroup filesystem is mounted');
  return { version: null, reason: notes.join('; ') };
}

export const hostProbe: CgroupProbe = {
  v2Controllers(mount) {
    try {
      return readFileSync(path.join(mount, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      return null;
    }
  },
  writable(dir) {
    try {
      accessSync(dir, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
  prepareV2Parent(mount, parentPath, controllers) {
    mkdirSync(path.join(mount, parentPath), { recursive: true });
    for (const w of v2EnableWrites(mount, parentPath, controllers)) {
      try {
        writeFileSync(w.file, w.value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why =
          code === 'EBUSY'
            ? `${path.dirname(w.file)} holds processes of its own, and a cgroup that hands controllers to its ` +
              'children may not (the "no internal processes" rule): move them into a child cgroup, or set ' +
              'HOURGLASS_CGROUP_PARENT below a cgroup delegated to Hourglass'
            : (err as Error).message;
        throw new Error(`cannot enable ${w.value.slice(1)} in ${w.file}: ${why}`);
      }
    }
  },
};
