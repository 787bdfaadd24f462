// CPU time used by each component of a stack so far (from /proc/<pid>/stat), so that a bench can
// say what one of its phases cost: take a reading before and after, subtract.
import { readFileSync } from 'node:fs';
import { classify, type Component } from './processes';

/** USER_HZ: /proc counts clock ticks of 1/100 s on Linux (x86-64, arm64). */
const TICKS_PER_SECOND = 100;

export type CpuReading = Record<Component, number>;

/**
 * Seconds of CPU per component: each live process's own (utime + stime) plus that of its children
 * it has reaped (cutime + cstime), so a short-lived command's time is not lost once it has exited
 * (it is lost only when its parent is gone too).
 */
export function cpuSeconds(stateDir: string, leaderPid: number): CpuReading {
  const out = { hourglass: 0, temporal: 0, postgres: 0, sandboxes: 0 } as CpuReading;
  for (const [kind, procs] of classify(stateDir, leaderPid)) {
    for (const p of procs) out[kind] += ticksOf(p.pid) / TICKS_PER_SECOND;
  }
  return out;
}

/** after − before, per component, in seconds (one decimal). */
export function cpuSpent(before: CpuReading, after: CpuReading): CpuReading {
  const out = {} as CpuReading;
  for (const k of Object.keys(after) as Component[]) out[k] = Math.round((after[k] - (before[k] ?? 0)) * 10) / 10;
  return out;
}

function ticksOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3; utime, stime, cutime, cstime are fields 14–17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0; // exited while we looked
  }
}
