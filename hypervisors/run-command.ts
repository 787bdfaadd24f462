// Runs a host command with a timeout and captures its output (used by drivers, not sandboxes' insides).
import { spawn } from 'node:child_process';
import os from 'node:os';
import { capBytes, outputFields } from './exec-output';
import type { ExecResult } from './types';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  signal?: AbortSignal;
  input?: string;
  /** Bytes of stdout/stderr kept; the rest is dropped with a marker. */
  maxOutputBytes?: number;
}

export async function runCommand(argv: string[], opts: RunOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runCommand needs a command');
  const started = Date.now();
  const max = opts.maxOutputBytes ?? 1024 * 1024;
  // detached: the command gets its own process group, so a timeout kills everything it started.
  const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outBytes = 0;
  let errBytes = 0;
  child.stdout.on('data', (b: Buffer) => {
    if (outBytes < max) out.push(b);
    outBytes += b.length;
  });
  child.stderr.on('data', (b: Buffer) => {
    if (errBytes < max) err.push(b);
    errBytes += b.length;
  });
  child.stdin.on('error', () => {}); // a command that ignores its stdin closes the pipe early
  child.stdin.end(opts.input ?? '');

  let timedOut = false;
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        killGroup();
      }, opts.timeoutMs)
    : undefined;
  opts.signal?.addEventListener('abort', killGroup, { once: true });

  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    // A background process (`sleep 100 &`) keeps the pipes open after the command exits:
    // answer on exit, after a short grace for the output still in flight.
    child.once('exit', (code, sig) => {
      const status = code ?? (sig ? 128 + signalNumber(sig) : 1);
      const grace = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        resolve(status);
      }, 100);
      child.once('close', () => {
        clearTimeout(grace);
        resolve(status);
      });
    });
  }).finally(() => {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', killGroup);
  });
  // Chunks past the cap were not kept: count them in the marker too.
  const bytes = (chunks: Buffer[], total: number) =>
    capBytes(Buffer.concat(chunks), max, (dropped) => `\n…[${dropped + total - Buffer.concat(chunks).length} bytes truncated]`);
  return {
    exitCode: timedOut ? 124 : exitCode,
    ...outputFields(bytes(out, outBytes), bytes(err, errBytes)),
    durationMs: Date.now() - started,
    timedOut,
  };
}

function signalNumber(sig: NodeJS.Signals): number {
  return os.constants.signals[sig] ?? 0;
}
