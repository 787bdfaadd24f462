// An embedded service (PostgreSQL, the Temporal dev server) as a child process that
//  - leads its own process group and session, so a terminal's Ctrl-C reaches only Hourglass,
//    which then stops everything in order (API, worker drain, pool, PostgreSQL, Temporal);
//  - dies with Hourglass however Hourglass ends, SIGKILL included: util-linux's `setpriv` sets
//    the parent-death signal (prctl PR_SET_PDEATHSIG) right before exec. The kernel clears that
//    setting on a user switch, so setpriv switches user first and sets it last.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { componentLogger } from '../log/logger';
import { processStartTime } from '../hypervisors/common/proc-identity';
import type { StopStep } from '../hypervisors/common/process-table';
import { findExecutable } from '../hypervisors/common/find-executable';

export interface ServiceProcessOptions {
  /** For messages: "PostgreSQL", "Temporal". */
  name: string;
  command: string;
  args: string[];
  /** What the kernel sends the service when Hourglass dies. */
  parentDeathSignal: NodeJS.Signals;
  /** Run as this user (PostgreSQL refuses to run as root). */
  runAs?: { uid: number; gid: number };
  /** File-creation mask of the service, e.g. 0o077: its files readable by its user only. */
  umask?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each line it prints until it is asked to stop; the last ones are also kept for error messages. */
  onLine?: (line: string) => void;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  /** Start time from /proc (clock ticks since boot): with the pid, identifies the process. */
  readonly startTime: string;
  /** Resolves once it has exited and its last output lines are in. */
  readonly exited: Promise<ChildExit>;
  /** Set as soon as it has exited. */
  exitStatus(): ChildExit | undefined;
  /** The last lines it printed. */
  recentOutput(): string[];
  /** Sends each signal in turn until it exits; resolves once it has (or every step ran out). */
  stop(steps: readonly StopStep[]): Promise<void>;
}

const RECENT_LINES = 30;
const log = componentLogger('embedded');

export async function startServiceProcess(opts: ServiceProcessOptions): Promise<ServiceProcess> {
  const { command, args, spawnUser } = withParentDeathSignal(opts);
  const previousUmask = opts.umask === undefined ? undefined : process.umask(opts.umask);
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: opts.cwd ?? '/',
      env: opts.env ?? serviceEnvironment(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...spawnUser,
    });
  } finally {
    // fork() has happened by now: the child keeps the mask it was spawned with.
    if (previousUmask !== undefined) process.umask(previousUmask);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start ${opts.name} (${command}): ${err.message}`)));
  });
  const pid = child.pid!;
  // Later 'error' events (a signal that could not be sent) must not go unhandled.
  child.on('error', (err) => log.warn(`${opts.name} (pid ${pid}): ${err.message}`));

  const recent: string[] = [];
  // What a service says while we stop it (Temporal: "task queue closed") is not news.
  let stopping = false;
  const outputEnded = [child.stdout!, child.stderr!].map((stream) => {
    const lines = createInterface({ input: stream });
    lines.on('line', (line) => {
      if (!line.trim()) return;
      recent.push(line);
      if (recent.length > RECENT_LINES) recent.shift();
      if (!stopping) opts.onLine?.(line);
    });
    return new Promise<void>((r) => lines.once('close', r));
  });

  let status: ChildExit | undefined;
  // 'exit', not 'close': PostgreSQL's backends inherit the pipes and may outlive the postmaster.
  // Its last lines (why it died) may still be in the pipes, though: wait a little for them.
  const exited = new Promise<ChildExit>((resolve) =>
    child.once('exit', (code, signal) => {
      liveChildren.delete(entry);
      status = { code, signal };
      const flushed = Promise.race([Promise.all(outputEnded), new Promise((r) => setTimeout(r, 250))]);
      void flushed.then(() => resolve(status!));
    }),
  );
  const entry = { child, signal: opts.parentDeathSignal };
  liveChildren.add(entry);
  ensureExitHook();
  // Read after spawn: the start time is the fork's, unchanged by setpriv's exec.
  const startTime = (await processStartTime(pid)) ?? '';

  return {
    name: opts.name,
    pid,
    startTime,
    exited,
    exitStatus: () => status,
    recentOutput: () => [...recent],
    async stop(steps) {
      stopping = true;
      for (const [signal, waitMs] of steps) {
        if (status) return;
        // Our own unreaped child: its pid cannot have been reused.
        child.kill(signal);
        await Promise.race([exited, new Promise((r) => setTimeout(r, waitMs).unref())]);
      }
    },
  };
}

/** "exited with code 1", "killed by SIGKILL". */
export function describeExit(exit: ChildExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

let setprivPath: string | null | undefined;
let warnedNoSetpriv = false;

function withParentDeathSignal(opts: ServiceProcessOptions): {
  command: string;
  args: string[];
  spawnUser: { uid?: number; gid?: number };
} {
  setprivPath ??= findSetpriv();
  if (!setprivPath) {
    if (!warnedNoSetpriv) {
      warnedNoSetpriv = true;
      log.warn(
        'setpriv (util-linux) not found: embedded services stop when Hourglass exits, ' +
          'but not if it is killed with SIGKILL (the next start then stops them)',
      );
    }
    return {
      command: opts.command,
      args: opts.args,
      spawnUser: opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {},
    };
  }
  const user = opts.runAs ? [`--reuid=${opts.runAs.uid}`, `--regid=${opts.runAs.gid}`, '--clear-groups'] : [];
  return {
    command: setprivPath,
    args: [...user, `--pdeathsig=${opts.parentDeathSignal}`, '--', opts.command, ...opts.args],
    spawnUser: {},
  };
}

function findSetpriv(): string | null {
  return process.platform === 'linux' ? findExecutable('setpriv') : null;
}

// Where setpriv is missing (or a signal arrives before it has run), still ask the services to
// stop when this process exits normally or through process.exit().
const liveChildren = new Set<{ child: ChildProcess; signal: NodeJS.Signals }>();
let exitHookInstalled = false;

function ensureExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const { child, signal } of liveChildren) child.kill(signal);
  });
}

/**
 * What an embedded service inherits: no more than it needs. Hourglass's own environment holds API
 * tokens and the payload key, which the services do not use and whose users may read them.
 */
function serviceEnvironment(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_MESSAGES', 'TZ', 'TMPDIR'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}
