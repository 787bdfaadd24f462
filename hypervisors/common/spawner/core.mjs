// Starting host processes, shared by the spawner process and the in-process fallback. Plain
// JavaScript on purpose: the spawner runs it with bare `node` (no loader, ~40 MB), because fork()
// costs in proportion to the forking process's memory — ~16 ms of blocked event loop per command
// from a 400 MB service, ~1 ms from the spawner.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';

/**
 * Runs a command in its own process group and captures its output (up to maxOutputBytes of each
 * stream, counting the rest). Returns a kill function; `done` gets the result or an error.
 * @param {{ file: string, args: string[], cwd?: string, env?: Record<string,string>, input?: string | Uint8Array,
 *   timeoutMs?: number, maxOutputBytes: number }} req
 * @param {(err: Error | null, result?: { exitCode: number, out: Buffer, outBytes: number, err: Buffer,
 *   errBytes: number, timedOut: boolean, durationMs: number }) => void} done
 */
export function runCaptured(req, done) {
  return runStreaming(req, {}, done).kill;
}

/**
 * runCaptured whose output is also handed to `hooks.onChunk` as soon as it is read, and whose
 * stdin, with `hooks.stdin`, stays open for `write` until `end` (else: req.input, then closed).
 * `pause`/`resume` hold the output back (the caller's sink is behind): the pipes then fill and
 * the command blocks on its writes.
 * @param {{ onChunk?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void, stdin?: boolean }} hooks
 * @returns {{ kill: () => void, write: (chunk: Uint8Array, cb: (err?: Error | null) => void) => void,
 *   end: () => void, pause: () => void, resume: () => void }}
 */
export function runStreaming(req, hooks, done) {
  const started = Date.now();
  const max = req.maxOutputBytes;
  const noop = () => {};
  let child;
  try {
    // detached: the command gets its own process group, so a timeout kills everything it started.
    child = spawn(req.file, req.args, { cwd: req.cwd, env: req.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    done(e);
    return { kill: noop, write: (_c, cb) => cb(e), end: noop, pause: noop, resume: noop };
  }
  const out = [];
  const err = [];
  let outBytes = 0;
  let errBytes = 0;
  child.stdout.on('data', (b) => {
    if (outBytes < max) out.push(b);
    outBytes += b.length;
    hooks.onChunk?.('stdout', b);
  });
  child.stderr.on('data', (b) => {
    if (errBytes < max) err.push(b);
    errBytes += b.length;
    hooks.onChunk?.('stderr', b);
  });
  child.stdin.on('error', () => {}); // a command that ignores its stdin closes the pipe early
  if (!hooks.stdin) child.stdin.end(req.input ?? '');

  let timedOut = false;
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const timer = req.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        killGroup();
      }, req.timeoutMs)
    : undefined;
  let finished = false;
  const finish = (error, status) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (error) return done(error);
    done(null, {
      exitCode: timedOut ? 124 : status,
      out: Buffer.concat(out),
      outBytes,
      err: Buffer.concat(err),
      errBytes,
      timedOut,
      durationMs: Date.now() - started,
    });
  };
  child.once('error', (e) => finish(e));
  // A background process (`sleep 100 &`) keeps the pipes open after the command exits: answer on
  // exit, after a short grace for the output still in flight (not counted while held back).
  let paused = false;
  let exitStatus;
  let grace;
  const armGrace = () => {
    clearTimeout(grace);
    grace = setTimeout(() => {
      if (paused) return;
      child.stdout.destroy();
      child.stderr.destroy();
      finish(null, exitStatus);
    }, 100);
  };
  child.once('exit', (code, sig) => {
    exitStatus = code ?? (sig ? 128 + (os.constants.signals[sig] ?? 0) : 1);
    armGrace();
    child.once('close', () => {
      clearTimeout(grace);
      finish(null, exitStatus);
    });
  });
  return {
    kill: killGroup,
    write: (chunk, cb) => {
      if (finished || child.stdin.destroyed || child.stdin.writableEnded) return cb(new Error('stdin is closed'));
      child.stdin.write(chunk, cb);
    },
    end: () => child.stdin.end(),
    pause: () => {
      paused = true;
      child.stdout.pause();
      child.stderr.pause();
    },
    resume: () => {
      paused = false;
      child.stdout.resume();
      child.stderr.resume();
      if (exitStatus !== undefined && !finished) armGrace();
    },
  };
}

/**
 * Starts a long-lived process in its own session, stdout/stderr appended to logFile, not waited
 * for by anyone but the kernel. `exited` hears how it ended, should it end while we are here.
 * @param {{ file: string, args: string[], env?: Record<string,string>, logFile: string, stdoutToLog?: boolean }} req
 * @param {(how: string) => void} exited
 * @returns {number} its pid
 */
export function startDetached(req, exited) {
  const log = openSync(req.logFile, 'a');
  try {
    const child = spawn(req.file, req.args, {
      detached: true,
      stdio: ['ignore', req.stdoutToLog ? log : 'ignore', log],
      env: req.env,
    });
    child.once('exit', (code, sig) => exited(`exited ${code ?? sig}`));
    child.once('error', (e) => exited(e.message));
    child.unref();
    if (child.pid === undefined) throw new Error(`cannot start ${req.file}`);
    return child.pid;
  } finally {
    closeSync(log);
  }
}
