// Where a sandbox's cgroup lives and which files set its limits, for cgroup v1 and v2. Pure: the
// directories and writes are computed here and carried out by cgroups.ts, so the v2 layout (which
// this project's machines cannot run) is unit-tested without pretending to be a kernel.
import path from 'node:path';

export type CgroupController = 'memory' | 'pids' | 'cpu';
export const CGROUP_CONTROLLERS: CgroupController[] = ['memory', 'pids', 'cpu'];

export interface CgroupLimits {
  memoryMiB?: number;
  pids?: number;
  /** CPU time in cores (a quota per period; may be fractional). */
  cpus?: number;
}

/** A sandbox's cgroup, as kept in its sandbox.json: enough for any later worker to find it. */
export type CgroupRecord =
  /** One directory per hierarchy: `<mount of controller>/<path>`. */
  | { version: 1; path: string; mounts: Partial<Record<CgroupController, string>> }
  /** One leaf `<mount>/<path>` in the unified hierarchy. */
  | { version: 2; path: string; mount: string; controllers: CgroupController[] };

export interface FileWrite {
  file: string;
  value: string;
  /** Skip when the kernel lacks the file (v1 memsw without swap accounting, v2 without swap). */
  ifPresent?: boolean;
}

export interface CgroupPlan {
  /** Created in order (each with its parents). */
  mkdirs: string[];
  writes: FileWrite[];
}

/** The CFS period; the quota is cpus × period (the kernel's minimum quota is 1 ms). */
export const CPU_PERIOD_US = 100_000;

export function cpuQuotaUs(cpus: number): number {
  return Math.round(cpus * CPU_PERIOD_US);
}

const MiB = 1024 * 1024;

export function controllersOf(record: CgroupRecord): CgroupController[] {
  return record.version === 2 ? record.controllers : CGROUP_CONTROLLERS.filter((c) => record.mounts[c]);
}

/** The sandbox's own directories: one per distinct v1 hierarchy, or the v2 leaf. */
export function sandboxCgroupDirs(record: CgroupRecord): string[] {
  if (record.version === 2) return [path.join(record.mount, record.path)];
  return [...new Set(Object.values(record.mounts).map((mount) => path.join(mount, record.path)))];
}

/** The files a process writes its own pid to, to join the sandbox's cgroup(s). */
export function cgroupProcsFiles(record: CgroupRecord): string[] {
  return sandboxCgroupDirs(record).map((dir) => path.join(dir, 'cgroup.procs'));
}

/** The limits a record's controllers enforce (the rest are left out: not enforced). */
export function enforcedCgroupLimits(record: CgroupRecord, limits: CgroupLimits): CgroupLimits {
  const controllers = controllersOf(record);
  return {
    ...(controllers.includes('memory') && limits.memoryMiB !== undefined ? { memoryMiB: limits.memoryMiB } : {}),
    ...(controllers.includes('pids') && limits.pids !== undefined ? { pids: limits.pids } : {}),
    ...(controllers.includes('cpu') && limits.cpus !== undefined ? { cpus: limits.cpus } : {}),
  };
}

/**
 * `hostPidsCap` bounds the processes of every sandbox on the host together, on the top parent
 * (HOURGLASS_CGROUP_PARENT): per-sandbox pids.max values add up past the kernel's pid_max long
 * before memory runs out (1,000 sandboxes × 256 > 32,768), and the host needs pids of its own.
 */
export function cgroupPlan(record: CgroupRecord, limits: CgroupLimits, hostPidsCap?: number): CgroupPlan {
  const plan = record.version === 2 ? v2Plan(record, limits) : v1Plan(record, limits);
  if (hostPidsCap === undefined) return plan;
  const top = record.path.split('/').slice(0, -2).join('/');
  const pidsMount =
    record.version === 2 ? (record.controllers.includes('pids') ? record.mount : undefined) : record.mounts.pids;
  if (!pidsMount || !top) return plan;
  // v2: after the controllers are handed down (the top parent's pids.max exists only then).
  const at = record.version === 2 ? plan.writes.findIndex((w) => !w.file.endsWith('cgroup.subtree_control')) : 0;
  plan.writes.splice(at < 0 ? plan.writes.length : at, 0, {
    file: path.join(pidsMount, top, 'pids.max'),
    value: String(hostPidsCap),
  });
  return plan;
}

/** v1: a directory per hierarchy, each with its controller's files. */
function v1Plan(record: Extract<CgroupRecord, { version: 1 }>, limits: CgroupLimits): CgroupPlan {
  const dir = (c: CgroupController) => path.join(record.mounts[c]!, record.path);
  const writes: FileWrite[] = [];
  if (record.mounts.memory && limits.memoryMiB !== undefined) {
    const bytes = String(limits.memoryMiB * MiB);
    // memsw (memory + swap) must be >= the memory limit, so it is written second; equal means no swap.
    writes.push({ file: path.join(dir('memory'), 'memory.limit_in_bytes'), value: bytes });
    writes.push({ file: path.join(dir('memory'), 'memory.memsw.limit_in_bytes'), value: bytes, ifPresent: true });
  }
  if (record.mounts.pids && limits.pids !== undefined) {
    writes.push({ file: path.join(dir('pids'), 'pids.max'), value: String(limits.pids) });
  }
  if (record.mounts.cpu && limits.cpus !== undefined) {
    writes.push({ file: path.join(dir('cpu'), 'cpu.cfs_period_us'), value: String(CPU_PERIOD_US) });
    writes.push({ file: path.join(dir('cpu'), 'cpu.cfs_quota_us'), value: String(cpuQuotaUs(limits.cpus)) });
  }
  return { mkdirs: sandboxCgroupDirs(record), writes };
}

/**
 * v2: the leaf holds the limits, and every cgroup above it must hand the controllers down through
 * cgroup.subtree_control. The "no internal processes" rule: a non-root cgroup that enables
 * controllers for its children may not hold processes itself, so processes only ever join leaves.
 */
function v2Plan(record: Extract<CgroupRecord, { version: 2 }>, limits: CgroupLimits): CgroupPlan {
  const leaf = path.join(record.mount, record.path);
  const writes: FileWrite[] = v2EnableWrites(record.mount, path.dirname(record.path), record.controllers);
  const has = (c: CgroupController) => record.controllers.includes(c);
  if (has('memory') && limits.memoryMiB !== undefined) {
    writes.push({ file: path.join(leaf, 'memory.max'), value: String(limits.memoryMiB * MiB) });
    writes.push({ file: path.join(leaf, 'memory.swap.max'), value: '0', ifPresent: true });
  }
  if (has('pids') && limits.pids !== undefined) {
    writes.push({ file: path.join(leaf, 'pids.max'), value: String(limits.pids) });
  }
  if (has('cpu') && limits.cpus !== undefined) {
    writes.push({ file: path.join(leaf, 'cpu.max'), value: `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}` });
  }
  return { mkdirs: [...v2Ancestors(record.mount, path.dirname(record.path)).slice(1), leaf], writes };
}

/** `+controller` into the subtree_control of the mount root and each cgroup down to `parentPath`. */
export function v2EnableWrites(mount: string, parentPath: string, controllers: CgroupController[]): FileWrite[] {
  return v2Ancestors(mount, parentPath).flatMap((dir) =>
    controllers.map((c) => ({ file: path.join(dir, 'cgroup.subtree_control'), value: `+${c}` })),
  );
}

/** The mount root, then each cgroup down to `parentPath` (relative to the mount). */
function v2Ancestors(mount: string, parentPath: string): string[] {
  const parts = parentPath.split('/').filter((p) => p && p !== '.');
  return [mount, ...parts.map((_, i) => path.join(mount, ...parts.slice(0, i + 1)))];
}
