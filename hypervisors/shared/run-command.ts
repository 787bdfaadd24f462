// Runs a host command with a timeout and captures its output (started by the spawner process).
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
  const r = await runCaptured({ file, args, cwd: opts.cwd, env: opts.env, input: opts.input, timeoutMs: opts.timeoutMs, maxOutputBytes: max }, opts.signal);
  // Chunks past the cap were not kept: count them in the marker too.
  const bytes = (kept: Buffer, total: number) => capBytes(kept, max, (dropped) => `\n…[${dropped + total - kept.length} bytes truncated]`);
  return { exitCode: r.exitCode, ...outputFields(bytes(r.out, r.outBytes), bytes(r.err, r.errBytes)), durationMs: r.durationMs, timedOut: r.timedOut };
}
