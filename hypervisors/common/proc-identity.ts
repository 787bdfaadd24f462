// Pids are reused: a recorded pid is only ours if its start time (from /proc) still matches.
import { readFile } from 'node:fs/promises';

export interface ProcessStat {
  /** Field 3: R, S, D, Z (zombie), X (dead)… */
  state: string;
  /** Field 4: the parent's pid. */
  ppid: number;
  /** Field 22: clock ticks since boot. */
  startTime: string;
}

/** State and start time from /proc/<pid>/stat, or null if there is no such pid. */
export async function processStat(pid: number): Promise<ProcessStat | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', ppid: Number(fields[1]), startTime: fields[19] ?? '' };
  } catch {
    return null;
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null if gone. */
export async function processStartTime(pid: number): Promise<string | null> {
  return (await processStat(pid))?.startTime || null;
}

/** A zombie has exited and only waits to be reaped (a daemonized child of init, maybe late). */
export function hasExited(stat: ProcessStat): boolean {
  return stat.state === 'Z' || stat.state === 'X';
}

export interface RecordedProcess {
  pid: number;
  startTime: string;
}

export async function recordProcess(pid: number): Promise<RecordedProcess> {
  const startTime = await processStartTime(pid);
  if (startTime === null) throw new Error(`process ${pid} exited before it could be recorded`);
  return { pid, startTime };
}

/** Same pid, same start time, and not a zombie. */
export async function isAlive(p: RecordedProcess): Promise<boolean> {
  const stat = await processStat(p.pid);
  return stat !== null && stat.startTime === p.startTime && !hasExited(stat);
}

/** Sends a signal only when the pid still belongs to the recorded process. */
export async function signalIfOurs(p: RecordedProcess, signal: NodeJS.Signals): Promise<boolean> {
  if (!(await isAlive(p))) return false;
  try {
    process.kill(p.pid, signal);
    return true;
  } catch {
    return false;
  }
}

export async function waitForExit(p: RecordedProcess, timeoutMs: number, pollMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(p))) return true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return !(await isAlive(p));
}
