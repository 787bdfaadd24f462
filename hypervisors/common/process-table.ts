// Finding and stopping processes by what they run on, from /proc. Pids are reused, so every
// process found is recorded with its start time, and only signalled while that still matches.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { hasExited, isAlive, processStat, signalIfOurs, waitForExit, type RecordedProcess } from './proc-identity';

export interface ProcessInfo extends RecordedProcess {
  ppid: number;
  /** Exited and waiting to be reaped (a zombie): nothing left to stop. */
  exited: boolean;
  argv: string[];
  /** Working directory, or null when /proc does not let us read it. */
  cwd: string | null;
  /** Resolved executable, or null when /proc does not let us read it. */
  exe: string | null;
  /** The user the process runs as. */
  uid: number;
}

/**
 * Every process on the machine (Linux /proc) whose command line is a `candidate` and that then
 * `matches`. Only candidates' details are read: a busy host has thousands of processes.
 * Processes that exit meanwhile are skipped.
 */
export async function findProcesses(
  candidate: (argv: string[]) => boolean,
  matches: (p: ProcessInfo) => boolean = () => true,
): Promise<ProcessInfo[]> {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const found: ProcessInfo[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    // Synchronous on purpose: thousands of tiny reads through the thread pool take 10x longer.
    const argv = commandLine(entry);
    if (!argv || !candidate(argv)) continue;
    const info = await processInfo(Number(entry), argv);
    if (info && matches(info)) found.push(info);
  }
  return found;
}

function commandLine(pid: string): string[] | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (argv.at(-1) === '') argv.pop();
    return argv;
  } catch {
    return null; // exited while we looked
  }
}

async function processInfo(pid: number, argv: string[]): Promise<ProcessInfo | null> {
  const [cwd, exe, stat] = await Promise.all([
    readlink(`/proc/${pid}/cwd`).catch(() => null),
    readlink(`/proc/${pid}/exe`).catch(() => null),
    processStat(pid),
  ]);
  let uid: number;
  try {
    uid = statSync(`/proc/${pid}`).uid;
  } catch {
    return null; // exited while we looked
  }
  return stat
    ? { pid, startTime: stat.startTime, ppid: stat.ppid, exited: hasExited(stat), argv, cwd, exe, uid }
    : null;
}

/** The value of a command-line option given as `--name value` or `--name=value`. */
export function optionValue(argv: string[], ...names: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    for (const name of names) {
      if (arg === name) return argv[i + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return undefined;
}

export type StopStep = readonly [signal: NodeJS.Signals, waitMs: number];

/**
 * Sends each signal in turn until the process is gone, waiting up to each step's time for it to
 * exit. True once it has exited (or was already gone); false if it outlived every step.
 */
export async function stopProcess(p: RecordedProcess, steps: readonly StopStep[]): Promise<boolean> {
  for (const [signal, waitMs] of steps) {
    if (!(await signalIfOurs(p, signal))) return !(await isAlive(p));
    if (await waitForExit(p, waitMs, 50)) return true;
  }
  return false;
}
