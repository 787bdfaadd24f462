// Host commands of the drivers start in a small helper process, not in the service: fork() costs
// in proportion to the forking process's memory, and it blocks the event loop (measured here: 16 ms
// per command from a 370 MB process, 1 ms from a 50 MB one) — at seven commands per sandbox
// lifecycle that was the service's largest cost. Without the helper (it cannot start, or
// HOURGLASS_SPAWNER=0) commands start in-process, as before.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  runCaptured as runCapturedHere,
  runStreaming as runStreamingHere,
  startDetached as startDetachedHere,
  type DetachRequest,
  type RunRequest,
  type RunResult,
} from './core.mjs';

export type { RunResult } from './core.mjs';

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
  exited?: (how: string) => void;
  /** A streaming run: its output as it comes, and its stdin chunks acknowledged. */
  onChunk?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  onAck?: (ok: boolean) => void;
}

const SCRIPT = fileURLToPath(new URL('./process.mjs', import.meta.url));
let helper: ChildProcess | null | undefined; // null: unavailable, run in-process
const waiters = new Map<number, Waiter>();
let nextId = 1;
let running = 0; // requests awaiting an answer: only then does the channel keep this process alive

function spawner(): ChildProcess | null {
  if (helper !== undefined) return helper;
  if (process.env.HOURGLASS_SPAWNER === '0') return (helper = null);
  try {
    // Bare node: no loader, no inherited --import or NODE_OPTIONS.
    const child = fork(SCRIPT, [], {
      execArgv: [],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', onMessage);
    child.on('error', () => {});
    child.once('exit', () => {
      // Whatever it was running is lost to us (not killed): say so; the next call starts another.
      if (helper === child) helper = undefined;
      for (const [id, w] of waiters) {
        if (!w.exited) w.reject(new Error('the spawner process exited'));
        waiters.delete(id);
      }
      running = 0;
    });
    child.unref();
    child.channel?.unref();
    helper = child;
  } catch {
    helper = null;
  }
  return helper;
}

function onMessage(msg: {
  id: number;
  result?: RunResult;
  pid?: number;
  exited?: string;
  error?: string;
  code?: string;
  stream?: 'stdout' | 'stderr';
  chunk?: Buffer;
  ack?: 'ok' | 'closed';
}): void {
  const w = waiters.get(msg.id);
  if (!w) return;
  if (msg.chunk !== undefined) return w.onChunk?.(msg.stream!, msg.chunk);
  if (msg.ack !== undefined) return w.onAck?.(msg.ack === 'ok');
  if (msg.exited !== undefined) {
    w.exited?.(msg.exited);
    waiters.delete(msg.id);
    return;
  }
  settled();
  if (msg.error !== undefined) {
    waiters.delete(msg.id);
    w.reject(Object.assign(new Error(msg.error), { code: msg.code }));
  } else if (msg.pid !== undefined) {
    w.resolve(msg.pid); // stays registered to hear when it exits
  } else {
    waiters.delete(msg.id);
    w.resolve(msg.result);
  }
}

function request<T>(
  child: ChildProcess,
  msg: object,
  exited?: (how: string) => void,
  streaming?: Pick<Waiter, 'onChunk' | 'onAck'>,
): { id: number; answer: Promise<T> } {
  const id = nextId++;
  const answer = new Promise<T>((resolve, reject) =>
    waiters.set(id, { resolve: resolve as (v: unknown) => void, reject, exited, ...streaming }),
  );
  if (running++ === 0) child.channel?.ref();
  child.send({ ...msg, id });
  return { id, answer };
}

function settled(): void {
  if (--running === 0) helper?.channel?.unref();
}

/** Runs a command to its end (own process group; killed on timeout or abort) and captures its output. */
export async function runCaptured(req: RunRequest, signal?: AbortSignal): Promise<RunResult> {
  const child = spawner();
  if (!child) {
    return new Promise((resolve, reject) => {
      const kill = runCapturedHere(req, (err, result) => (err ? reject(err) : resolve(result!)));
      signal?.addEventListener('abort', kill, { once: true });
    });
  }
  const { id, answer } = request<RunResult>(child, { op: 'run', req: { ...req, env: req.env ?? process.env } });
  const kill = () => child.send({ op: 'kill', id });
  signal?.addEventListener('abort', kill, { once: true });
  try {
    return await answer;
  } finally {
    signal?.removeEventListener('abort', kill);
  }
}

/** Starts a long-lived process in its own session (output appended to its log); returns its pid. */
export async function spawnDetached(req: DetachRequest, exited: (how: string) => void): Promise<number> {
  const child = spawner();
  if (!child) return startDetachedHere(req, exited);
  return request<number>(child, { op: 'detach', req: { ...req, env: req.env ?? process.env } }, exited).answer;
}

/** Output of a streaming run, and where its stdin comes from. */
export interface StreamHooks {
  /** Each chunk as soon as it is read, in order per stream and across both. */
  onChunk(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** Written as the command reads it, then stdin is closed; replaces req.input. */
  stdin?: AsyncIterable<Buffer>;
}

/** A command running with streamed output. */
export interface RunningCommand {
  /** Its result (as runCaptured's); rejects with the error of onChunk or of the stdin source (the command killed). */
  result: Promise<RunResult>;
  /** Holds the output back (the sink is behind); the command blocks once the pipes are full. */
  pause(): void;
  resume(): void;
}

/** runCaptured with the output handed over as it is read and stdin fed from a stream. */
export function runStreaming(req: RunRequest, hooks: StreamHooks, signal?: AbortSignal): RunningCommand {
  const child = spawner();
  let finished = false;
  // The first failure of the caller's side (its output sink threw, its stdin source failed): the
  // command is killed and this is the answer.
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    failure ??= { error };
    kill();
  };
  const onChunk = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
    if (failure) return;
    try {
      hooks.onChunk(stream, chunk);
    } catch (err) {
      fail(err);
    }
  };
  const acks: ((ok: boolean) => void)[] = [];
  let controls: { kill(): void; write(chunk: Buffer): Promise<boolean>; end(): void; pause(): void; resume(): void };
  let exited: Promise<RunResult>;
  if (!child) {
    exited = new Promise((resolve, reject) => {
      const c = runStreamingHere(req, { onChunk, stdin: Boolean(hooks.stdin) }, (err, result) =>
        err ? reject(err) : resolve(result!),
      );
      controls = {
        ...c,
        write: (chunk) => new Promise((done) => c.write(chunk, (err) => done(!err))),
      };
    });
  } else {
    const msg = { op: 'run', stream: true, stdin: Boolean(hooks.stdin), req: { ...req, env: req.env ?? process.env } };
    const { id, answer } = request<RunResult>(child, msg, undefined, {
      onChunk,
      onAck: (ok) => acks.shift()?.(ok),
    });
    exited = answer;
    controls = {
      kill: () => child.send({ op: 'kill', id }),
      // Acknowledged in order, once the spawner has the chunk in the pipe.
      write: (data) =>
        new Promise((done) => {
          acks.push(done);
          child.send({ op: 'stdin', id, data });
        }),
      end: () => child.send({ op: 'stdin-end', id }),
      pause: () => child.send({ op: 'pause', id }),
      resume: () => child.send({ op: 'resume', id }),
    };
  }
  function kill() {
    controls.kill();
  }
  signal?.addEventListener('abort', kill, { once: true });
  const ended = exited.finally(() => {
    finished = true;
    for (const ack of acks.splice(0)) ack(false);
    signal?.removeEventListener('abort', kill);
  });
  // A source still waiting when the command ends (killed at its timeout) is not waited for.
  if (hooks.stdin) {
    feed(hooks.stdin, controls!, () => finished).catch((err: unknown) => fail(err ?? new Error('stdin')));
  }
  return {
    result: ended.then((r) => {
      if (failure) throw failure.error;
      return r;
    }),
    pause: () => controls.pause(),
    resume: () => controls.resume(),
  };
}

/** Chunks written to a command's stdin and not yet in its pipe: bounds memory, keeps the pipe busy. */
const STDIN_WINDOW = 4;

/** Copies `source` into the command's stdin, a few chunks in flight, then closes it. */
async function feed(
  source: AsyncIterable<Buffer>,
  stdin: { write(chunk: Buffer): Promise<boolean>; end(): void },
  finished: () => boolean,
): Promise<void> {
  const inFlight: Promise<boolean>[] = [];
  try {
    for await (const chunk of source) {
      if (finished()) return;
      inFlight.push(stdin.write(chunk));
      // The command ended or closed its stdin: stop reading the source.
      if (inFlight.length >= STDIN_WINDOW && !(await inFlight.shift())) return;
    }
    for (const written of inFlight) if (!(await written)) return;
  } finally {
    if (!finished()) stdin.end();
  }
}
