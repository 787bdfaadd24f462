// The exec contract for a command the worker's host starts itself (the process driver): its own
// process group, killed whole at the deadline (EXIT_TIMED_OUT), output cut as every driver cuts it.
import { runCaptured } from '../common/spawner/index';
import type { ExecResult } from '../types';
import { EXEC_OUTPUT_CAP_BYTES, EXIT_TIMED_OUT } from './contract';
import { cappedOutput } from './exec-result';

export interface HostExecOptions {
  cwd?: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

export async function runOnHost(argv: string[], opts: HostExecOptions): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runOnHost needs a command');
  const { cwd, env, timeoutMs } = opts;
  const r = await runCaptured({ file, args, cwd, env, timeoutMs, maxOutputBytes: EXEC_OUTPUT_CAP_BYTES }, opts.signal);
  return {
    exitCode: r.timedOut ? EXIT_TIMED_OUT : r.exitCode, // 128 + N when a signal killed it
    ...cappedOutput(
      { bytes: r.out, truncated: r.outBytes > r.out.length },
      { bytes: r.err, truncated: r.errBytes > r.err.length },
    ),
    durationMs: r.durationMs,
    timedOut: r.timedOut,
  };
}
