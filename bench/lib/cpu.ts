// CPU time used so far and memory held now by each part of a stack (from /proc), so that a bench
// can say what one of its phases cost: take a reading before and after, subtract the CPU.
import { readFileSync } from 'node:fs';
import { classify, type Proc } from './processes';

/** USER_HZ: /proc counts clock ticks of 1/100 s on Linux (x86-64, arm64). */
const TICKS_PER_SECOND = 100;

/**
 * The service's own processes (node: API and worker; the process driver's spawner; esbuild), the
 * commands it runs for the sandboxes (children of the spawner, named by no state-dir path), the
 * sandboxes' holders, Temporal, PostgreSQL.
 */
export type Part = 'service' | 'commands' | 'sandboxes' | 'temporal' | 'postgres';

export interface Reading {
  /** CPU seconds so far: each live process's own plus its reaped children's (cutime, cstime). */
  cpu: Record<Part, number>;
  rssMiB: Record<Part, number>;
  processes: Record<Part, number>;
}

const SERVICE = /cli\/main\.ts|spawner|esbuild/;

export function reading(stateDir: string, leaderPid: number): Reading {
  const zero = () => ({ service: 0, commands: 0, sandboxes: 0, temporal: 0, postgres: 0 });
  const out: Reading = { cpu: zero(), rssMiB: zero(), processes: zero() };
  for (const [kind, procs] of classify(stateDir, leaderPid)) {
    for (const p of procs) {
      const part: Part = kind === 'hourglass' ? (isService(p) ? 'service' : 'commands') : kind;
      out.cpu[part] += ticksOf(p.pid) / TICKS_PER_SECOND;
      out.rssMiB[part] += p.rssKiB / 1024;
      out.processes[part]++;
    }
  }
  for (const k of Object.keys(out.rssMiB) as Part[]) out.rssMiB[k] = Math.round(out.rssMiB[k]);
  return out;
}

/** CPU seconds between two readings, per part (one decimal). */
export function cpuSpent(before: Reading, after: Reading): Record<Part, number> {
  const out = {} as Record<Part, number>;
  for (const k of Object.keys(after.cpu) as Part[]) out[k] = Math.round((after.cpu[k] - before.cpu[k]) * 10) / 10;
  return out;
}

/** One of the service's own processes (not a command it runs). */
export const isService = (p: Proc) => p.argv.some((a) => SERVICE.test(a));

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
