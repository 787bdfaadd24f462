// A command's whole stdout when it may be larger than an exec result holds (a big directory's
// listing): streamed when the transport can, else run plainly and, past exec's cap, run again
// into a temporary file in the sandbox that is then read and removed.
import { randomBytes } from 'node:crypto';
import type { ExecResult, OpContext } from '../types';
import { CappedSink } from './capped-sink';
import { EXEC_OUTPUT_CAP_BYTES } from './contract';
import type { FileTransport } from './file-transport';
import { outputBytes } from './output';
import { scriptResult } from './script-failure';
import { removeTemp } from './temp-file';

export interface LargeOutputOptions {
  /** Past this many bytes of stdout the command is stopped and `tooLarge()` thrown. */
  maxBytes: number;
  tooLarge: () => Error;
  timeoutSeconds: number;
}

/** The command's result and, when it exited 0, its whole stdout (else what there was of it). */
export async function largeOutput(
  t: FileTransport,
  argv: string[],
  opts: LargeOutputOptions,
  ctx?: OpContext,
): Promise<{ result: ExecResult; stdout: Buffer }> {
  const parts: Buffer[] = [];
  const capped = new CappedSink(async (chunk) => void parts.push(chunk), opts.maxBytes, opts.tooLarge);
  try {
    if (t.streamOutput) {
      const s = await t.streamOutput(argv, capped.push, ctx);
      return { result: scriptResult(s.exitCode, s.stderr), stdout: Buffer.concat(parts) };
    }
    const r = await t.run(argv, { timeoutSeconds: opts.timeoutSeconds }, ctx);
    const out = outputBytes(r.stdout, r.stdoutBase64);
    // Longer than the cap: exec cut it (and added its marker).
    if (r.exitCode !== 0 || out.length <= EXEC_OUTPUT_CAP_BYTES) return { result: r, stdout: out };
    const again = await throughTempFile(t, argv, capped.push, opts.timeoutSeconds, ctx);
    return { result: again, stdout: Buffer.concat(parts) };
  } catch (err) {
    throw capped.cause(err);
  }
}

/** Runs argv with its stdout into a temporary file in the sandbox, reads it, removes it. */
async function throughTempFile(
  t: FileTransport,
  argv: string[],
  sink: (chunk: Buffer) => Promise<void>,
  timeoutSeconds: number,
  ctx?: OpContext,
): Promise<ExecResult> {
  const temp = `/tmp/.hourglass-out.${randomBytes(8).toString('hex')}`;
  const wrapped = ['/bin/sh', '-c', 'o=$1; shift; "$@" > "$o"', 'hourglass-files', temp, ...argv];
  try {
    const r = await t.run(wrapped, { timeoutSeconds }, ctx);
    if (r.exitCode === 0) await t.readBytes(temp, sink, ctx);
    return r;
  } finally {
    await removeTemp(t, temp);
  }
}
