// The exec contract for a command the worker's host starts itself (the process driver): its own
// process group, killed whole at the deadline (EXIT_TIMED_OUT), output cut as every driver cuts it.
// Streamed (execStream, file transfers), its output is also handed over as it is read.
import { runCaptured, runStreaming, type RunResult } from '../common/spawner/index';
import type { ExecResult, OutputSink } from '../types';
import { EXEC_OUTPUT_CAP_BYTES, EXIT_TIMED_OUT } from './contract';
import { cappedOutput } from './exec-result';

export interface HostExecOptions {
  cwd?: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Output flow of a running command: held back while its reader is behind. */
export interface OutputFlow {
  pause(): void;
  resume(): void;
}

/** A streamed run: where its output goes as it is read, and its stdin. */
export interface HostStream {
  onOutput: OutputSink;
  /** Given to the command's stdin, which is then closed (none: closed at once). */
  stdin?: Buffer | AsyncIterable<Buffer>;
  /** Hears the command's output flow once it has started. */
  onStart?: (flow: OutputFlow) => void;
}

export async function runOnHost(argv: string[], opts: HostExecOptions, stream?: HostStream): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runOnHost needs a command');
  const { cwd, env, timeoutMs } = opts;
  const req = { file, args, cwd, env, timeoutMs, maxOutputBytes: EXEC_OUTPUT_CAP_BYTES };
  let r: RunResult;
  if (!stream) {
    r = await runCaptured(req, opts.signal);
  } else {
    const { stdin } = stream;
    const input = Buffer.isBuffer(stdin) ? stdin : undefined;
    const source = Buffer.isBuffer(stdin) ? undefined : stdin;
    const running = runStreaming({ ...req, input }, { onChunk: stream.onOutput, stdin: source }, opts.signal);
    stream.onStart?.(running);
    r = await running.result;
  }
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
