// Runs a host command with its output appended to a log file (the log is what error messages quote).
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';

/** Resolves with the exit code: 127 if the command cannot be run, 128 if killed (also after timeoutMs). */
export async function runToLog(command: string, args: string[], logFile: string, timeoutMs = 60_000): Promise<number> {
  const log = await open(logFile, 'a');
  try {
    return await new Promise<number>((done) => {
      const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd], detached: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        void log.write(`${command}: ${err.message}\n`).finally(() => done(127));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        done(code ?? (signal ? 128 : 1));
      });
    });
  } finally {
    await log.close();
  }
}
