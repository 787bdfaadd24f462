// How an exec's stream ends: exactly one terminal event, `exit` or `error`. The live stream takes
// it from the update's outcome; a follower (reconnect, background) from the execs row.
import type pg from 'pg';
import { getExec } from '../../registry/execs';
import type { ExecOutput } from '../../workflows/types';
import type { ApiError } from '../errors';

export type ExecEnd =
  | { event: 'exit'; data: { execId: string; exitCode: number; durationMs: number; timedOut: boolean } }
  | { event: 'error'; data: { error: { code: string; message: string; details?: unknown } } };

/** Answers the exec's end once it is known (its output is all committed by then); undefined meanwhile. */
export type EndProbe = () => Promise<ExecEnd | undefined>;

export function exitEnd(execId: string, out: Pick<ExecOutput, 'exitCode' | 'durationMs' | 'timedOut'>): ExecEnd {
  return {
    event: 'exit',
    data: { execId, exitCode: out.exitCode, durationMs: out.durationMs, timedOut: out.timedOut },
  };
}

export function errorEnd(err: ApiError): ExecEnd {
  const { code, message, details } = err;
  return { event: 'error', data: { error: { code, message, ...(details !== undefined ? { details } : {}) } } };
}

/** The end of a live stream: its update's outcome, once settled. */
export function outcomeProbe(
  execId: string,
  outcome: Promise<ExecOutput>,
  toError: (err: unknown) => Promise<ApiError>,
) {
  let end: ExecEnd | undefined;
  const settled = outcome
    .then(
      (out) => void (end = exitEnd(execId, out)),
      async (err: unknown) => void (end = errorEnd(await toError(err))),
    )
    .catch(() => {
      end = errorEnd({ code: 'internal', message: 'internal error; see the server log' } as ApiError);
    });
  const probe: EndProbe = () => Promise.resolve(end);
  return { probe, settled };
}

/**
 * A signal's exit code (> 128) without an error may be a destroy or a kill whose reason the
 * workflow writes a moment after the activity recorded the end (recordExecOutcome): wait this long.
 */
const REASON_GRACE_MS = 2000;

/** The end of a follower's stream: the execs row, once finished_at is set. */
export function rowProbe(pool: pg.Pool, sandboxId: string, execId: string): EndProbe {
  return async () => {
    let row = await getExec(pool, sandboxId, execId);
    if (!row?.finishedAt) return undefined;
    // Killed by a signal and no reason yet: give the workflow its moment (the output is all in by now).
    for (let waited = 0; signalled(row) && waited < REASON_GRACE_MS; waited += 200) {
      await new Promise((r) => setTimeout(r, 200));
      row = (await getExec(pool, sandboxId, execId)) ?? row;
    }
    const error = typeof row.error === 'string' ? row.error : undefined;
    if (error) return errorEnd({ code: rowErrorCode(error), message: error } as ApiError);
    return exitEnd(execId, {
      exitCode: typeof row.exitCode === 'number' ? row.exitCode : -1,
      durationMs: typeof row.durationMs === 'number' ? row.durationMs : 0,
      timedOut: row.timedOut === true,
    });
  };
}

function signalled(row: { exitCode?: unknown; error?: unknown; state: string }): boolean {
  return typeof row.exitCode === 'number' && row.exitCode > 128 && !row.error && row.state !== 'killed';
}

/** The row keeps only the message: a destroy is the sandbox's state, anything else a failed run. */
function rowErrorCode(message: string): string {
  return /destroy/i.test(message) ? 'invalid_state' : 'operation_failed';
}
