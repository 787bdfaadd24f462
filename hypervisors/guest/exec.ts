// The exec contract for the drivers whose commands run through the QEMU guest agent: qemu (its
// socket), libvirt (virsh qemu-agent-command) and proxmox (the PVE API). Each implements GuestAgent
// in its own folder; starting, polling, the deadline, the tree kill and the result live here.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecResult, OpContext } from '../types';
import { EXIT_TIMED_OUT, exitCodeOf } from './contract';
import type { ExecPlan } from './exec-plan';
import { cappedOutput } from './exec-result';

/** guest-exec-status, decoded. The output is there once the process has exited. */
export interface GuestExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  stdout?: Buffer;
  stderr?: Buffer;
  /** The agent dropped output past its own cap (qemu-ga: 16 MiB). */
  stdoutTruncated?: boolean;
  stderrTruncated?: boolean;
}

/** What a driver offers: qemu-ga's guest-exec and guest-exec-status, however it reaches them. */
export interface GuestAgent {
  /**
   * Starts argv with captured output; returns the guest pid. `env` is the whole environment of
   * the process (undefined: the agent's own). A failure here is the agent's or the guest's: the
   * program itself is looked up by the launch script (contract.ts), which answers a missing one.
   */
  exec(argv: string[], env?: Record<string, string>): Promise<number>;
  /** Not idempotent: the agent forgets a pid once it has answered "exited" for it. */
  status(pid: number): Promise<GuestExecStatus>;
  /** Pauses between status polls, doubling from first to max (a poll may cost a process or a request). */
  readonly pollMs: { first: number; max: number };
}

/**
 * Kills a guest process and everything under it. Each is frozen (SIGSTOP) before its children are
 * looked up, so it can neither fork nor go on to its next command; killed only after its children,
 * whom it would otherwise hand to init where they could no longer be found. qemu-ga has no
 * exec-kill command (QEMU 7.2), and a busybox guest has no pgrep, hence /proc.
 */
export const KILL_TREE =
  'k() { kill -STOP "$1"; for s in /proc/[0-9]*/stat; do ' +
  'read -r p c st pp rest < "$s" 2>/dev/null && [ "$pp" = "$1" ] && k "$p"; done; kill -9 "$1"; }; k "$0"';

/** How long a killed command's last status (its output so far) is waited for. */
export const COLLECT_MS = 2_000;

/** Runs a planned command (exec-plan.ts) to its end or its deadline. */
export async function runInGuest(agent: GuestAgent, plan: ExecPlan, ctx: OpContext = {}): Promise<ExecResult> {
  const started = Date.now();
  const result = (status: GuestExecStatus, timedOut: boolean): ExecResult => ({
    exitCode: timedOut ? EXIT_TIMED_OUT : exitCodeOf(status),
    ...cappedOutput(
      { bytes: status.stdout ?? Buffer.alloc(0), truncated: status.stdoutTruncated },
      { bytes: status.stderr ?? Buffer.alloc(0), truncated: status.stderrTruncated },
    ),
    durationMs: Date.now() - started,
    timedOut,
  });
  const pid = await agent.exec(plan.argv, plan.env);
  const deadline = started + plan.timeoutMs;
  try {
    // The signal is checked between polls, not handed to the agent: an aborted request could
    // take with it the connection still needed to kill the process.
    for (let pause = agent.pollMs.first; ; pause = Math.min(pause * 2, agent.pollMs.max)) {
      const status = await agent.status(pid);
      if (status.exited) return result(status, false);
      ctx.signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(pause, left), undefined, { signal: ctx.signal });
    }
  } catch (err) {
    // Cancelled (activity cancelled, worker shutting down): do not leave the command running.
    if (ctx.signal?.aborted) {
      await killTree(agent, pid);
      ctx.signal.throwIfAborted();
    }
    throw err;
  }
  const killer = await killTree(agent, pid);
  const last = await lastStatus(agent, pid);
  if (killer !== null) await agent.status(killer).catch(() => undefined); // frees the agent's record of it
  return result(last ?? { exited: true }, true);
}

/** Kills a guest process's tree (KILL_TREE). Best effort; returns the killer's pid. */
export async function killTree(agent: GuestAgent, pid: number): Promise<number | null> {
  return agent.exec(['/bin/sh', '-c', KILL_TREE, String(pid)]).catch(() => null);
}

/** The killed process's exited status (what it printed until then), if the agent gives it soon. */
export async function lastStatus(agent: GuestAgent, pid: number): Promise<GuestExecStatus | null> {
  const until = Date.now() + COLLECT_MS;
  for (let pause = agent.pollMs.first; ; pause = Math.min(pause * 2, agent.pollMs.max)) {
    const status = await agent.status(pid).catch(() => null);
    if (!status || status.exited) return status;
    if (Date.now() >= until) return null;
    await sleep(Math.min(pause, Math.max(1, until - Date.now())));
  }
}
