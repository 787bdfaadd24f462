// execStream for the drivers whose commands run through the QEMU guest agent. qemu-ga's
// guest-exec hands output over only once the process has exited, so the command's stdout and
// stderr go to two files in the guest instead, which are read from while it runs (each driver
// says how: guest-file-read on a seeked handle, or a small command for PVE), then removed.
// Same contract as exec (guest/exec.ts): the launch script, the environment, the deadline that
// kills the whole process tree, the capped copy of the output in the result.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecResult, OpContext, OutputSink } from '../types';
import { EXEC_OUTPUT_CAP_BYTES, EXIT_TIMED_OUT, exitCodeOf } from './contract';
import { COLLECT_MS, killTree, lastStatus, type GuestAgent, type GuestExecStatus } from './exec';
import type { ExecPlan } from './exec-plan';
import { cappedOutput } from './exec-result';

/** The two output files of a streamed command, read as they grow. */
export interface OutputFiles {
  /**
   * The command's status (when `pid` is given), then up to `max` bytes of stdout's and of stderr's
   * file from their offsets, read after the status: once it says exited, they hold everything.
   * A file not there yet reads as empty. `signal` cuts short a wait inside one poll.
   */
  poll(pid: number | null, offsets: [number, number], max: number, signal?: AbortSignal): Promise<OutputPoll>;
  close(): Promise<void>;
}

export interface OutputPoll {
  status?: GuestExecStatus;
  chunks: [Buffer, Buffer];
}

/** What a driver offers on top of GuestAgent for a streamed exec. */
export interface StreamingGuestAgent extends GuestAgent {
  /** guest-exec with `stdin` as its input-data (then closed). Returns the guest pid. */
  start(argv: string[], env: Record<string, string>, stdin?: Buffer): Promise<number>;
  outputs(stdoutPath: string, stderrPath: string): OutputFiles;
  /** Pause between polls while the command is quiet, doubling from first to max. */
  readonly tailMs: { first: number; max: number };
  /** Most bytes asked for per file and poll. */
  readonly readChunkBytes: number;
}

/**
 * Sends the program's stdout and stderr to "$0.out" and "$0.err", then becomes the launch script
 * (which becomes the program): the pid the agent knows is still the program's.
 */
export const REDIRECT_SCRIPT = 'exec >"$0.out" 2>"$0.err" || exit 125; exec "$@"';

/** Where a streamed command's output is kept while it runs; random, so a guest cannot plant it. */
export const streamFilesBase = () => `/tmp/.hourglass-exec-${randomBytes(12).toString('hex')}`;

type Stream = 'stdout' | 'stderr';

/** Keeps every byte flowing to the sink and the first EXEC_OUTPUT_CAP_BYTES (+ a few) for the result. */
class StreamCopy {
  offset = 0;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;

  constructor(readonly stream: Stream) {}

  take(chunk: Buffer, onOutput: OutputSink): void {
    this.offset += chunk.length;
    // A few bytes past the cap, so the capper sees it was passed and cuts on a character boundary.
    const room = EXEC_OUTPUT_CAP_BYTES + 4 - this.keptBytes;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.kept.push(Buffer.from(part));
      this.keptBytes += part.length;
    }
    onOutput(this.stream, chunk);
  }

  get bytes(): Buffer {
    return Buffer.concat(this.kept);
  }
}

/**
 * Reads per poll, at most. A command writing faster than we read would otherwise keep one poll
 * going for ever, past its deadline and any kill: its output is its problem, the deadline is ours.
 */
const MAX_READS_PER_POLL = 8;

export async function runStreamingInGuest(
  agent: StreamingGuestAgent,
  plan: ExecPlan,
  stdin: Buffer | undefined,
  onOutput: OutputSink,
  ctx: OpContext = {},
): Promise<ExecResult> {
  const started = Date.now();
  const base = streamFilesBase();
  const streams = [new StreamCopy('stdout'), new StreamCopy('stderr')] as const;
  const files = agent.outputs(`${base}.out`, `${base}.err`);
  const result = (status: GuestExecStatus, timedOut: boolean): ExecResult => {
    // A redirect that failed (no /tmp) is reported by the shell on the agent's captured stderr.
    const agentErr = status.stderr?.length ? status.stderr : undefined;
    return {
      exitCode: timedOut ? EXIT_TIMED_OUT : exitCodeOf(status),
      ...cappedOutput({ bytes: streams[0].bytes }, { bytes: agentErr ?? streams[1].bytes }),
      durationMs: Date.now() - started,
      timedOut,
    };
  };
  /**
   * One poll: the status (if asked), and what each file gained; again while a read came back full,
   * up to MAX_READS_PER_POLL reads and not past `until`. `drained`: the last read was not full.
   */
  const poll = async (pid: number | null, until: number) => {
    let status: GuestExecStatus | undefined;
    let got = false;
    for (let reads = 0; reads < MAX_READS_PER_POLL; reads++) {
      if (reads > 0) {
        ctx.signal?.throwIfAborted();
        if (Date.now() >= until) break;
      }
      const offsets: [number, number] = [streams[0].offset, streams[1].offset];
      const answer = await files.poll(reads === 0 ? pid : null, offsets, agent.readChunkBytes, ctx.signal);
      if (reads === 0) status = answer.status;
      let full = false;
      answer.chunks.forEach((chunk, i) => {
        if (chunk.length === 0) return;
        got = true;
        full ||= chunk.length >= agent.readChunkBytes;
        streams[i]!.take(chunk, onOutput);
      });
      if (!full) return { status, got, drained: true };
    }
    return { status, got, drained: false };
  };

  const pid = await agent.start(['/bin/sh', '-c', REDIRECT_SCRIPT, base, ...plan.argv], plan.env, stdin);
  const deadline = started + plan.timeoutMs;
  // Its status once it has exited (the agent answers that only once); its files may still hold more.
  let exited: GuestExecStatus | undefined;
  try {
    for (let pause = agent.tailMs.first; ;) {
      const { status, got, drained } = await poll(exited ? null : pid, deadline);
      if (status?.exited) exited = status;
      if (exited && drained) return result(exited, false);
      ctx.signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (!drained) continue; // more is waiting: read on at once
      pause = got ? agent.tailMs.first : Math.min(pause * 2, agent.tailMs.max);
      await sleep(Math.min(pause, left), undefined, { signal: ctx.signal });
    }
    // It ended but its output outran us until the deadline: as late as a command still running.
    if (exited) return result(exited, true);
    // The deadline: kill the tree, keep (some of) what it wrote until then.
    const killer = await killTree(agent, pid);
    const last = await lastStatus(agent, pid);
    if (killer !== null) await agent.status(killer).catch(() => undefined);
    await poll(null, Date.now() + COLLECT_MS).catch(() => undefined);
    return result(last ?? { exited: true }, true);
  } catch (err) {
    // Cancelled, a sink that threw, or a failed poll: the command must not run on unwatched.
    if (!exited) await killTree(agent, pid);
    ctx.signal?.throwIfAborted();
    throw err;
  } finally {
    await files.close().catch(() => undefined);
    await removeFiles(agent, [`${base}.out`, `${base}.err`]);
  }
}

/** Best effort: a guest that went away takes its files with it. */
async function removeFiles(agent: GuestAgent, paths: string[]): Promise<void> {
  const pid = await agent.exec(['/bin/rm', '-f', ...paths]).catch(() => null);
  if (pid !== null) await lastStatus(agent, pid);
}
