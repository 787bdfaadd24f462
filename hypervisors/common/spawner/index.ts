// Host commands of the drivers start in a small helper process, not in the service: fork() costs
// in proportion to the forking process's memory, and it blocks the event loop (measured here: 16 ms
// per command from a 370 MB process, 1 ms from a 50 MB one) — at seven commands per sandbox
// lifecycle that was the service's largest cost. Without the helper (it cannot start, or
// HOURGLASS_SPAWNER=0) commands start in-process, as before.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  runCaptured as runCapturedHere,
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
}): void {
  const w = waiters.get(msg.id);
  if (!w) return;
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
): { id: number; answer: Promise<T> } {
  const id = nextId++;
  const answer = new Promise<T>((resolve, reject) =>
    waiters.set(id, { resolve: resolve as (v: unknown) => void, reject, exited }),
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
