// Options of the process driver (config/drivers.ts reads them from the environment): isolation mode,
// network, default limits, and their sanity checks.
import { BadSpecError } from '../errors';
import type { SandboxLimits } from '../types';

export const ISOLATION_MODES = ['bubblewrap', 'none'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/** Every limit a process sandbox gets (diskMiB 0 = no workspace quota). */
export type ResolvedLimits = Required<SandboxLimits>;

export const DEFAULT_LIMITS: ResolvedLimits = { cpus: 1, memoryMiB: 512, pids: 256, tmpMiB: 64, diskMiB: 1024 };

/** ProcessSettings (config/drivers.ts) and the state dir; tests leave out what they do not need. */
export interface ProcessOptions {
  stateDir: string;
  /** 'bubblewrap' (default): namespaces + seccomp, create fails without bwrap. 'none': an explicit opt-out. */
  isolation?: IsolationMode;
  /** Outbound network for new sandboxes through slirp4netns (default off: loopback only). */
  network?: boolean;
  /** Non-public IPv4 addresses/CIDRs a network-enabled sandbox may still reach (default none). */
  networkAllow?: string[];
  /** Limits of a sandbox whose create names none (each field defaults to DEFAULT_LIMITS). */
  limits?: SandboxLimits;
  /** Parent of every sandbox's cgroup, relative to each hierarchy's root (default `hourglass`). */
  cgroupParent?: string;
  /** Where bwrap and slirp4netns are looked up (default: this process's PATH). */
  searchPath?: string;
}

// Sanity bounds, not policy (the API checks requests against the operator's maxima): below them a
// sandbox cannot even start its holder, above them the number is a typo.
const BOUNDS = {
  cpus: { min: 0.01, max: 1024, integer: false }, // the kernel's smallest CFS quota is 1 ms per 100 ms
  memoryMiB: { min: 32, max: 4 * 1024 * 1024, integer: true },
  pids: { min: 16, max: 4 * 1024 * 1024, integer: true },
  tmpMiB: { min: 1, max: 1024 * 1024, integer: true }, // never 0: a tmpfs of size 0 is unlimited
  diskMiB: { min: 16, max: 16 * 1024 * 1024, integer: true }, // or exactly 0: no quota
} satisfies Record<keyof SandboxLimits, { min: number; max: number; integer: boolean }>;

/** Problems with the given limits, each naming the field as `label(field)` says. */
export function limitProblems(limits: SandboxLimits, label: (field: keyof SandboxLimits) => string): string[] {
  const problems: string[] = [];
  for (const field of Object.keys(BOUNDS) as (keyof SandboxLimits)[]) {
    const value = limits[field];
    if (value === undefined) continue;
    const b = BOUNDS[field];
    if (field === 'diskMiB' && value === 0) continue;
    const kind = b.integer ? 'an integer' : 'a number';
    const zero = field === 'diskMiB' ? ' (or 0: no quota)' : '';
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      (b.integer && !Number.isInteger(value)) ||
      value < b.min ||
      value > b.max
    ) {
      problems.push(`${label(field)} must be ${kind} from ${b.min} to ${b.max}${zero} (got ${String(value)})`);
    }
  }
  return problems;
}

/** The limits a new sandbox gets: what it asked for, else the driver's defaults. */
export function resolveLimits(id: string, asked: SandboxLimits | undefined, defaults: ResolvedLimits): ResolvedLimits {
  const problems = limitProblems(asked ?? {}, (f) => `limits.${f}`);
  if (problems.length) throw new BadSpecError(`sandbox ${id}: ${problems.join('; ')}`);
  const pick = <K extends keyof SandboxLimits>(k: K) => (asked?.[k] ?? defaults[k]) as number;
  return {
    cpus: pick('cpus'),
    memoryMiB: pick('memoryMiB'),
    pids: pick('pids'),
    tmpMiB: pick('tmpMiB'),
    diskMiB: pick('diskMiB'),
  };
}

/** A relative path of plain names: it is joined under each cgroup hierarchy's root. */
export function checkCgroupParent(parent: string): string {
  const parts = parent.split('/').filter(Boolean);
  if (parts.length === 0 || parts.some((p) => !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(p))) {
    throw new BadSpecError(
      'HOURGLASS_CGROUP_PARENT must be a relative path of names like hourglass or system.slice/hourglass ' +
        `(got ${parent})`,
    );
  }
  return parts.join('/');
}
