// Pids are reused: a recorded pid is only ours if its start time (from /proc) still matches.
import { readFile } from 'node:fs/promises';

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null if gone. */
export async function processStartTime(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
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

export async function isAlive(p: RecordedProcess): Promise<boolean> {
  return (await processStartTime(p.pid)) === p.startTime;
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

export async function waitForExit(p: RecordedProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(p))) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !(await isAlive(p));
}
