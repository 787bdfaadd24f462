// Who uses the memory: every process of one stack, sorted into the Hourglass process(es), the
// embedded Temporal and PostgreSQL, and the sandboxes, read from /proc (RSS, and PSS, which
// splits shared pages such as PostgreSQL's shared buffers between the processes that map them).
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

export interface Proc {
  pid: number;
  ppid: number;
  /** Process group: the stack's leader leads one of its own. */
  pgid: number;
  argv: string[];
  exe: string | null;
  cwd: string | null;
  rssKiB: number;
}

export type Component = 'hourglass' | 'temporal' | 'postgres' | 'sandboxes';

export interface ComponentUsage {
  processes: number;
  rssMiB: number;
  pssMiB: number;
  /** Each process, for Hourglass and Temporal (PostgreSQL has one per connection; sandboxes thousands). */
  each?: { pid: number; rssMiB: number; pssMiB: number; command: string }[];
}

export function processTable(): Proc[] {
  const procs: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      // stat: "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
        .split('\0')
        .filter((a, i, all) => a !== '' || i < all.length - 1);
      procs.push({
        pid: Number(entry),
        ppid: Number(ppid),
        pgid: Number(pgid),
        argv,
        exe: tryRead(() => readlinkSync(`/proc/${entry}/exe`)),
        cwd: tryRead(() => readlinkSync(`/proc/${entry}/cwd`)),
        // Kernel threads and zombies have no VmRSS line.
        rssKiB: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0),
      });
    } catch {
      /* exited while we looked */
    }
  }
  return procs;
}

/**
 * Sorts the processes of the stack running on `stateDir` under `leaderPid`. A process belongs to
 * the component of its nearest ancestor (or itself) that is a root: Temporal's `start-dev` on
 * this state dir, a PostgreSQL with its data dir there, or anything else whose command line names
 * the state dir (the sandboxes' holders, slirp4netns, commands being run); what is left of the
 * leader's tree is Hourglass itself (node, however many processes `npm start` runs).
 */
export function classify(stateDir: string, leaderPid: number, procs = processTable()): Map<Component, Proc[]> {
  const real = realpathSync(stateDir);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const rootKind = (p: Proc): Component | undefined => {
    const mentions = p.argv.some((a) => a.includes(real) || a.includes(stateDir));
    if (p.argv.includes('start-dev') && mentions) return 'temporal';
    if (path.basename(p.exe ?? '') === 'postgres' && (p.cwd?.startsWith(real) || mentions)) return 'postgres';
    if (mentions) return 'sandboxes';
    return undefined;
  };
  const memo = new Map<number, Component | null>();
  const kindOf = (p: Proc): Component | null => {
    const chain: Proc[] = [];
    let kind: Component | null = null;
    for (let q: Proc | undefined = p; q; q = byPid.get(q.ppid)) {
      if (memo.has(q.pid)) {
        kind = memo.get(q.pid)!;
        break;
      }
      chain.push(q);
      const root = rootKind(q);
      if (root) {
        kind = root;
        break;
      }
      if (q.pid === leaderPid || q.pgid === leaderPid) {
        kind = 'hourglass';
        break;
      }
      if (q.ppid === 0 || q.ppid === q.pid) break;
    }
    for (const q of chain) memo.set(q.pid, kind);
    return kind;
  };
  const out = new Map<Component, Proc[]>([
    ['hourglass', []],
    ['temporal', []],
    ['postgres', []],
    ['sandboxes', []],
  ]);
  for (const p of procs) {
    const kind = kindOf(p);
    if (kind) out.get(kind)!.push(p);
  }
  return out;
}

/** RSS and PSS per component (PSS from smaps_rollup; 0 where the kernel has none). */
export function memoryUsage(stateDir: string, leaderPid: number): Record<Component, ComponentUsage> {
  const result = {} as Record<Component, ComponentUsage>;
  for (const [kind, procs] of classify(stateDir, leaderPid)) {
    const each = procs.map((p) => ({
      pid: p.pid,
      rssKiB: p.rssKiB,
      pssKiB: pssKiB(p.pid),
      command: p.argv.slice(0, 6).join(' ').slice(0, 120),
    }));
    const sum = (f: (e: (typeof each)[number]) => number) =>
      Math.round((each.reduce((a, e) => a + f(e), 0) / 1024) * 10) / 10;
    result[kind] = {
      processes: procs.length,
      rssMiB: sum((e) => e.rssKiB),
      pssMiB: sum((e) => e.pssKiB),
      ...(kind === 'sandboxes' || kind === 'postgres'
        ? {}
        : {
            each: each.map((e) => ({
              pid: e.pid,
              rssMiB: Math.round(e.rssKiB / 102.4) / 10,
              pssMiB: Math.round(e.pssKiB / 102.4) / 10,
              command: e.command,
            })),
          }),
    };
  }
  return result;
}

function pssKiB(pid: number): number {
  const text = tryRead(() => readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return Number(/^Pss:\s+(\d+) kB/m.exec(text ?? '')?.[1] ?? 0);
}

/** Processes of a stack still running after it was stopped (sandbox holders survive a stop on purpose). */
export function leftovers(stateDir: string, leaderPid: number): (Proc & { kind: Component })[] {
  const found = classify(stateDir, leaderPid);
  // Zombies (no command line) wait only for their parent to reap them.
  return [...found].flatMap(([kind, procs]) =>
    procs.filter((p) => p.pid !== process.pid && p.argv.length > 0).map((p) => ({ ...p, kind })),
  );
}

function tryRead<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch {
    return null;
  }
}
