// Runs host commands with a timeout, started by the spawner process: runCommand for a command's whole
// result (sandbox commands), runTool for a tool whose stdout is the answer and whose failure is an error.
import { capBytes, outputFields } from '../guest/output';
import { runCaptured } from './spawner/index';
import type { ExecResult } from '../types';

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
  const max = opts.maxOutputBytes ?? 1024 * 1024;
  const r = await runCaptured(
    { file, args, cwd: opts.cwd, env: opts.env, input: opts.input, timeoutMs: opts.timeoutMs, maxOutputBytes: max },
    opts.signal,
  );
  // Chunks past the cap were not kept: count them in the marker too.
  const bytes = (kept: Buffer, total: number) =>
    capBytes(kept, max, (dropped) => `\n…[${dropped + total - kept.length} bytes truncated]`);
  return {
    exitCode: r.exitCode,
    ...outputFields(bytes(r.out, r.outBytes), bytes(r.err, r.errBytes)),
    durationMs: r.durationMs,
    timedOut: r.timedOut,
  };
}

/**
 * Runs a tool (virsh, qemu-img) in the C locale and resolves with its stdout; rejects with its
 * stderr lines as the message, or the signal's AbortError. `input` feeds virsh's shell, which exits
 * 0 whatever its commands did: its "error:" lines say.
 */
export async function runTool(
  argv: string[],
  opts: { signal?: AbortSignal; timeoutMs: number; input?: string },
): Promise<string> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runTool needs a command');
  const env = { ...process.env, LC_ALL: 'C' };
  const max = 64 * 1024 * 1024;
  const req = { file, args, env, input: opts.input, timeoutMs: opts.timeoutMs, maxOutputBytes: max };
  const r = await runCaptured(req, opts.signal);
  opts.signal?.throwIfAborted();
  const stderr = r.err.toString('utf8');
  const shellError = opts.input !== undefined && /^error:/m.test(stderr);
  if (r.exitCode === 0 && !shellError) return r.out.toString('utf8');
  const msg = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter(Boolean)
    .join('; ');
  const status = r.timedOut ? `timed out after ${opts.timeoutMs} ms` : `exited ${r.exitCode}`;
  throw new Error(msg || `${file} ${status}`);
}
