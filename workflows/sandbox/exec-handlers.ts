// What the exec, startExec and killExec updates do with streamed and background commands: the
// workflow records each before answering, caps how many run at once, runs each in a killable
// scope (running-execs.ts), and at the end waits for them to say how they ended.
import { ApplicationFailure, condition, currentUpdateInfo, log, uuid4 } from '@temporalio/workflow';
import { Failure } from '../failures';
import type { ExecInput, ExecMode, ExecOutput, KillExecResult } from '../types';
import { registry, registryLocal } from './activity-options';
import { runCommand } from './exec';
import { rootMessage } from './root-cause';
import type { SandboxRun } from './run';

/** Streamed and background commands one sandbox runs at once (each holds a worker's exec slot). */
export const MAX_RUNNING_EXECS = 32;
/** After the VM is gone, how long streamed commands and file operations get to say how they ended. */
const SETTLE_TIMEOUT = '30s';

/** The checks of exec and startExec beyond the state (run.requireState('exec') comes first). */
export function validateCommand(run: SandboxRun, cmd: ExecInput | undefined, background: boolean): void {
  if (!Array.isArray(cmd?.command) || cmd.command.length === 0) {
    throw ApplicationFailure.nonRetryable('command must be a non-empty array of strings', Failure.InvalidArgument);
  }
  if (!(cmd.stream || background)) return;
  if (cmd.execId !== undefined && run.execs.has(cmd.execId)) {
    const message = `exec ${cmd.execId} is already running in sandbox ${run.id}`;
    throw ApplicationFailure.nonRetryable(message, Failure.InvalidArgument);
  }
  if (run.execs.size >= MAX_RUNNING_EXECS) {
    const message =
      `sandbox ${run.id} already runs ${MAX_RUNNING_EXECS} streamed or background commands; ` +
      'kill one (POST /v1/sandboxes/:id/execs/:execId/kill) or wait for one to end';
    throw ApplicationFailure.nonRetryable(message, Failure.RateLimited, { running: run.execs.size });
  }
}

/** The exec update: a plain command as before; a streamed one recorded first and killable. */
export async function exec(run: SandboxRun, cmd: ExecInput): Promise<ExecOutput> {
  const execId = cmd.execId ?? currentUpdateInfo()?.id ?? uuid4();
  if (!cmd.stream) return runCommand(run, cmd, execId);
  // Recorded before the command starts: a follower that comes at once finds it (not a 404).
  await recordStart(run, cmd, execId, 'stream');
  return run.execs.run(execId, () => runCommand(run, cmd, execId));
}

/** A background command: recorded, started, answered at once; it runs until it ends, is killed, or the sandbox goes. */
export async function startExec(run: SandboxRun, cmd: ExecInput): Promise<{ execId: string }> {
  const execId = cmd.execId ?? currentUpdateInfo()?.id ?? uuid4();
  const input: ExecInput = { ...cmd, background: true, stream: false, execId };
  run.execs.background.add(execId);
  try {
    await recordStart(run, cmd, execId, 'background');
  } catch (err) {
    run.execs.background.delete(execId);
    throw err;
  }
  void run.execs
    .run(execId, () => runCommand(run, input, execId, 'background exec'))
    .catch((err) => log.info('background exec ended', { sandboxId: run.id, execId, error: rootMessage(err) }))
    .finally(() => {
      run.execs.background.delete(execId);
      run.wakeups += 1;
    });
  return { execId };
}

export function validateKillExec(input: { execId?: unknown } | undefined): void {
  if (typeof input?.execId !== 'string' || input.execId === '') {
    throw ApplicationFailure.nonRetryable('execId must be a non-empty string', Failure.InvalidArgument);
  }
}

/** Kills a streamed or background command and answers once it has ended. */
export async function killExec(run: SandboxRun, { execId }: { execId: string }): Promise<KillExecResult> {
  if (run.execs.starting.has(execId)) await condition(() => !run.execs.starting.has(execId));
  if (!run.execs.has(execId)) return { execId, killed: false };
  // Written first: the worker running it hears of it at once (NOTIFY exec_kill), and the record says
  // killed, not a plain exit 137, when the end lands.
  await registry.recordExecOutcome({ id: run.id, execId, killRequested: true });
  // Gone already: most likely the worker heard that write first and killed it (or it ended on its
  // own at that moment, which its row tells). Either way this kill is answered, not refused.
  run.execs.kill(execId);
  await condition(() => !run.execs.has(execId));
  return { execId, killed: true };
}

/**
 * After the VM is gone: file operations are cut, streamed and background commands get a moment
 * to record how they ended; any that could not is recorded as interrupted. Asked only when some
 * ran, so runs from before the data plane replay as they were.
 */
export async function settleAfterDestroy(run: SandboxRun, reason: string): Promise<void> {
  for (const op of run.fileOps) op.cancel();
  if (run.execs.size === 0 && run.fileOps.size === 0) return;
  await condition(() => run.execs.size === 0 && run.fileOps.size === 0, SETTLE_TIMEOUT);
  for (const execId of run.execs.ids()) {
    const why = `interrupted: the sandbox was destroyed (${reason}) before the command's end was recorded`;
    run.publish.write(() => registry.recordExecInterrupted({ id: run.id, execId, reason: why }));
  }
}

/** The refusal's words while history drains and background commands hold the rollover back. */
export function drainingMessage(run: SandboxRun): string {
  const waiting = [...run.execs.background];
  if (waiting.length === 0) return `sandbox ${run.id} is continuing as new; retry in a moment`;
  const shown = waiting.slice(0, 5).join(', ') + (waiting.length > 5 ? `, … (${waiting.length} in all)` : '');
  return (
    `sandbox ${run.id} must continue as new (its history is long) once its background commands end; ` +
    `kill them (${shown}) or wait`
  );
}

/**
 * Marked starting from here until run.execs.run takes it: a kill that found the record waits for
 * the command to start rather than miss it (killExec).
 */
async function recordStart(run: SandboxRun, cmd: ExecInput, execId: string, mode: ExecMode): Promise<void> {
  const envNames = Object.keys(cmd.env ?? {});
  const startedAt = new Date().toISOString();
  run.execs.starting.add(execId);
  try {
    await registryLocal.recordExecStart({ sandboxId: run.id, execId, command: cmd.command, envNames, startedAt, mode });
  } catch (err) {
    run.execs.starting.delete(execId);
    throw err;
  }
}
