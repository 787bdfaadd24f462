// An observer outside Hourglass: polls <stateDir>/process/ and records, per sandbox directory, when
// it appeared and disappeared (and whether it came back), and every holder process it recorded.
// This is the "when was the VM really gone" clock, independent of what Hourglass reports.
// Also the processes a run may leave behind, found by their command line, and the safety net that kills them.
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlive, type RecordedProcess } from '../../hypervisors/common/proc-identity';

export interface DirRecord {
  id: string;
  /** every [appearedAt, goneAt?] seen, ms since epoch; more than one = the directory came back */
  lives: { appearedAt: number; goneAt?: number }[];
  holders: RecordedProcess[];
}

export class StateDirMonitor {
  readonly dirs = new Map<string, DirRecord>();
  polls = 0;
  maxPollGapMs = 0;
  private timer?: NodeJS.Timeout;
  private lastPoll = 0;
  private running?: Promise<void>;

  constructor(
    private readonly processRoot: string,
    private readonly ignore: Set<string>,
    private readonly everyMs = 200,
  ) {}

  start(): void {
    const tick = async () => {
      await this.poll().catch(() => {});
      if (this.timer !== undefined) this.timer = setTimeout(() => void (this.running = tick()), this.everyMs);
    };
    this.timer = setTimeout(() => void (this.running = tick()), 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    await this.poll();
  }

  async poll(): Promise<void> {
    const now = Date.now();
    if (this.lastPoll) this.maxPollGapMs = Math.max(this.maxPollGapMs, now - this.lastPoll);
    this.lastPoll = now;
    this.polls += 1;
    let names: string[] = [];
    try {
      names = await readdir(this.processRoot);
    } catch {
      names = [];
    }
    const present = new Set(names.filter((n) => !this.ignore.has(n) && !n.endsWith('.tmp')));
    for (const id of present) {
      let rec = this.dirs.get(id);
      if (!rec) {
        rec = { id, lives: [], holders: [] };
        this.dirs.set(id, rec);
      }
      const last = rec.lives[rec.lives.length - 1];
      if (!last || last.goneAt !== undefined) rec.lives.push({ appearedAt: now });
      // Holders: read sandbox.json each time (a create retry may start a new holder).
      try {
        const meta = JSON.parse(await readFile(path.join(this.processRoot, id, 'sandbox.json'), 'utf8'));
        const h = meta.holder as RecordedProcess | undefined;
        if (h && !rec.holders.some((x) => x.pid === h.pid && x.startTime === h.startTime)) rec.holders.push(h);
      } catch {
        /* not written yet, or being removed */
      }
    }
    for (const rec of this.dirs.values()) {
      const last = rec.lives[rec.lives.length - 1]!;
      if (last.goneAt === undefined && !present.has(rec.id)) last.goneAt = now;
    }
  }

  /** Holders recorded at any time that are still alive now. */
  async liveHolders(): Promise<{ id: string; holder: RecordedProcess }[]> {
    const out: { id: string; holder: RecordedProcess }[] = [];
    for (const rec of this.dirs.values()) {
      for (const h of rec.holders) if (await isAlive(h)) out.push({ id: rec.id, holder: h });
    }
    return out;
  }
}

/** Every process whose command line mentions `needle` (e.g. the chaos state dir): bwrap holders. */
export async function processesMentioning(needle: string): Promise<{ pid: number; cmdline: string }[]> {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      if (cmdline.includes(needle)) out.push({ pid, cmdline });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** "<pid> (<program>) of sandbox <id>", the id read from the holder's work dir in its command line. */
export function strayDescription(p: { pid: number; cmdline: string }): string {
  const sandbox = /process\/([^/\s]+)\/work/.exec(p.cmdline)?.[1] ?? '?';
  return `${p.pid} (${p.cmdline.split(' ')[0]}) of sandbox ${sandbox}`;
}

/** The safety net: SIGKILLs every process still mentioning `needle`, and its children; says whom. */
export async function killStrays(needle: string): Promise<string[]> {
  const killed: string[] = [];
  for (const p of await processesMentioning(needle)) {
    killed.push(`killed stray process ${strayDescription(p)}`);
    for (const c of childrenOf(p.pid)) killPid(c);
    killPid(p.pid);
  }
  return killed;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killPid(pid: number) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
