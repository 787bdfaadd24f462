// How an exec's stream ends: exactly one terminal event, `exit` or `error`. The live stream takes
// it from the update's outcome; a follower (reconnect, background) from the execs row.
import type pg from 'pg';
import { getExec } from '../../registry/execs';
import { getSandbox } from '../../registry/sandboxes';
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
    if (!row) return undefined;
    if (!row.finishedAt) return orphanEnd(pool, sandboxId, execId);
    // The command's own account may come first: give the workflow its moment to say why (the
    // output is all in by now, so this only delays the terminal event).
    for (let waited = 0; waited < REASON_GRACE_MS && (await reasonPending(pool, sandboxId, row)); waited += 200) {
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

/**
 * An exec whose end will never be written: its sandbox is gone (DESTROYED or FAILED) and the
 * workflow that would have recorded the end with it (a terminated or completed run) is done.
 * Without this a follower would poll forever.
 */
async function orphanEnd(pool: pg.Pool, sandboxId: string, execId: string): Promise<ExecEnd | undefined> {
  const sandbox = await getSandbox(pool, sandboxId);
  if (!sandbox || !GONE.includes(sandbox.state)) return undefined;
  // The end may have landed since the first read: it wins.
  const again = await getExec(pool, sandboxId, execId);
  if (again?.finishedAt) return undefined;
  const why = sandbox.destroyReason ? ` (${sandbox.destroyReason})` : '';
  const message =
    `the sandbox was ${sandbox.state === 'FAILED' ? 'failed' : 'destroyed'} while the command ran${why}; ` +
    `exec ${execId} never recorded its end`;
  return errorEnd({ code: 'invalid_state', message, details: { state: sandbox.state } } as ApiError);
}

const GONE: readonly string[] = ['DESTROYED', 'FAILED'];

type EndedRow = { exitCode?: unknown; error?: unknown; state: string };

/**
 * Whether the workflow may still write why the exec ended: it died of a signal with no reason
 * given, or its sandbox is going away and the error is the command's own (a lost guest agent),
 * not the destroy's (recordExecOutcome, written a moment after the activity's end).
 */
async function reasonPending(pool: pg.Pool, sandboxId: string, row: EndedRow): Promise<boolean> {
  if (row.state === 'killed') return false;
  if (typeof row.error !== 'string') return typeof row.exitCode === 'number' && row.exitCode > 128;
  if (DESTROY_REASON.test(row.error)) return false;
  const sandbox = await getSandbox(pool, sandboxId);
  return sandbox !== null && ENDING.includes(sandbox.state);
}

/** How the workflow words a destroy's reason (workflows/sandbox/exec.ts cutShortByDestroy). */
const DESTROY_REASON = /destroyed while the command ran/;
const ENDING: readonly string[] = ['EXPIRED', 'FAILED', 'DESTROYING', 'DESTROYED'];

/** The row keeps only the message: a destroy is the sandbox's state, anything else a failed run. */
function rowErrorCode(message: string): string {
  return DESTROY_REASON.test(message) ? 'invalid_state' : 'operation_failed';
}
