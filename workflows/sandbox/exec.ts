// One command in the sandbox, for an exec update or a job step: always with an explicit timeout,
// recorded even when the registry or the worker fails, and told apart from a destroy that cut it short.
import { ApplicationFailure, TimeoutFailure, patched } from '@temporalio/workflow';
import { DEFAULT_EXEC_TIMEOUT_SECONDS } from '../../hypervisors/guest/contract';
import { Failure } from '../failures';
import { execSummary } from '../summaries';
import type { ExecInput, ExecOutput } from '../types';
import { exec, EXEC_START_TIMEOUT_SECONDS, registry } from './activity-options';
import { rootMessage } from './root-cause';
import type { SandboxRun } from './run';

/** `what` names the command in the Temporal UI: `exec`, `job step 2:`. */
export async function runCommand(run: SandboxRun, cmd: ExecInput, execId: string, what = 'exec'): Promise<ExecOutput> {
  const { id } = run;
  const timeoutSeconds = cmd.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS;
  // Streamed and background commands can be killed; their output is in the registry, not here.
  const killable = Boolean(cmd.stream || cmd.background);
  let out: ExecOutput;
  try {
    const { unrecorded, ...result } = await exec(
      timeoutSeconds,
      execSummary(cmd.command, what),
      killable,
    ).execInSandbox({
      id,
      driver: run.request.driver,
      execId,
      input: { ...cmd, timeoutSeconds },
    });
    // The registry was down when the command ended: record it now (registry writes retry forever).
    if (unrecorded) run.publish.write(() => registry.recordExecEnd({ record: unrecorded, output: result }));
    out = result;
  } catch (err) {
    // A worker that died mid-command never wrote the exec's end: the record must not stay open.
    // patched: runs whose exec failed before this write existed must replay without it.
    if (patched('record-interrupted-execs')) {
      const reason = `interrupted: ${rootMessage(err)}`;
      run.publish.write(() => registry.recordExecInterrupted({ id, execId, reason }));
    }
    if (run.destroyReason) throw cutShortByDestroy(run, undefined, killable ? execId : undefined);
    if (err instanceof Error && err.cause instanceof TimeoutFailure && err.cause.timeoutType === 'SCHEDULE_TO_START') {
      throw ApplicationFailure.nonRetryable(
        `exec in sandbox ${id} did not start: no worker had a free slot for streamed and background commands ` +
          `within ${EXEC_START_TIMEOUT_SECONDS} s (HOURGLASS_EXEC_CONCURRENCY per worker); try again`,
        Failure.Busy,
      );
    }
    if (err instanceof Error && err.cause instanceof TimeoutFailure) {
      throw ApplicationFailure.nonRetryable(
        `exec in sandbox ${id} was interrupted: the worker running it was lost (${rootMessage(err)}); ` +
          'the command may have partly run, and is recorded as interrupted',
        Failure.ExecInterrupted,
      );
    }
    throw err;
  }
  // Killed by a signal while the sandbox was being torn down: the destroy did it, not the command.
  if (run.destroyReason && out.exitCode > 128) {
    throw cutShortByDestroy(run, out.exitCode, killable ? execId : undefined);
  }
  return out;
}

/** `execId`: a streamed or background command, whose record then says why it ended (its followers read it). */
function cutShortByDestroy(run: SandboxRun, exitCode?: number, execId?: string): ApplicationFailure {
  const { state, destroyReason } = run;
  const message = `cannot exec in sandbox ${run.id}: it was destroyed while the command ran (${destroyReason})`;
  if (execId) run.publish.write(() => registry.recordExecOutcome({ id: run.id, execId, error: message }));
  return ApplicationFailure.nonRetryable(message, Failure.InvalidState, {
    state,
    operation: 'exec',
    destroyReason,
    ...(exitCode !== undefined ? { exitCode } : {}),
  });
}
