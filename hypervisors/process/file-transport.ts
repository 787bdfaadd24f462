// How the common file layer (guest/sandbox-file-system.ts) moves bytes in and out of a process
// sandbox: commands run as every exec does (its namespaces, user, cgroup), with stdin streamed in
// (`cat > path`) and stdout streamed out, never through the host's view of its directory.
import { BadSpecError } from '../errors';
import type { FileTransport } from '../guest/file-transport';
import type { HostStream } from '../guest/host-exec';
import { MAX_EXEC_TIMEOUT_SECONDS } from '../guest/contract';
import { OrderedSink } from '../common/ordered-sink';
import type { ExecRequest, ExecResult, OpContext } from '../types';

/** Runs a request in the sandbox with its output streamed (ProcessHypervisor's streamed exec). */
export type StreamedRun = (req: ExecRequest, stream: HostStream, ctx?: OpContext) => Promise<ExecResult>;

/** A transfer may take as long as the longest exec; cancellation comes through ctx.signal. */
const TRANSFER_TIMEOUT_SECONDS = MAX_EXEC_TIMEOUT_SECONDS;

const ignore = () => {};

export class ProcessFileTransport implements FileTransport {
  constructor(
    readonly id: string,
    readonly workspace: string,
    private readonly runStreamed: StreamedRun,
  ) {}

  run(command: string[], opts: { stdin?: Buffer; timeoutSeconds?: number } = {}, ctx?: OpContext) {
    return this.runStreamed(
      { command, timeoutSeconds: opts.timeoutSeconds },
      { onOutput: ignore, stdin: opts.stdin },
      ctx,
    );
  }

  async writeBytes(path: string, data: AsyncIterable<Buffer>, ctx?: OpContext): Promise<number> {
    let size = 0;
    async function* counted() {
      for await (const chunk of data) {
        size += chunk.length;
        yield chunk;
      }
    }
    const r = await this.runStreamed(
      { command: ['/bin/sh', '-c', 'cat > "$1"', 'hourglass-write', path], timeoutSeconds: TRANSFER_TIMEOUT_SECONDS },
      { onOutput: ignore, stdin: counted() },
      ctx,
    );
    if (r.exitCode !== 0) throw this.failed('writing', path, r.exitCode, r.stderr);
    return size;
  }

  async readBytes(path: string, sink: (chunk: Buffer) => Promise<void>, ctx?: OpContext): Promise<number> {
    const r = await this.streamOutput(['cat', '--', path], sink, ctx);
    if (r.exitCode !== 0) throw this.failed('reading', path, r.exitCode, r.stderr);
    return r.size;
  }

  async streamOutput(
    command: string[],
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
  ): Promise<{ exitCode: number; stderr: string; size: number }> {
    // The sink failing ends the command: nobody would read the rest.
    const stop = new AbortController();
    const out = new OrderedSink(sink, () => stop.abort());
    const signal = ctx?.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
    const r = await this.runStreamed(
      { command, timeoutSeconds: TRANSFER_TIMEOUT_SECONDS },
      {
        onOutput: (stream, chunk) => stream === 'stdout' && out.push(chunk),
        onStart: (flow) => out.attach(flow),
      },
      { ...ctx, signal },
    );
    await out.done();
    ctx?.signal?.throwIfAborted();
    return { exitCode: r.exitCode, stderr: r.stderr, size: out.size };
  }

  /** Permanent: what stops `cat` in the sandbox (no space left, permission) does not pass by itself. */
  private failed(doing: string, path: string, exitCode: number, stderr: string): BadSpecError {
    const said = stderr.trim() || `exit code ${exitCode}`;
    return new BadSpecError(`sandbox ${this.id}: ${doing} ${JSON.stringify(path)} failed: ${said}`);
  }
}
