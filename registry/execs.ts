// The execs table: every command run in a sandbox, as the registry keeps it (GET /v1/sandboxes/:id/execs).
import type pg from 'pg';
import { capBytes, outputBytes, outputFields } from '../hypervisors/guest/output';
import { storableJson, storableText } from './storable';
import type { ExecMode, ExecOutput } from '../workflows/types';

const OUTPUT_CAP = 64 * 1024; // bytes of stdout/stderr kept per exec

/** One exec as the registry keeps it. Env values are secrets: only their names are kept. */
export interface ExecRecord {
  sandboxId: string;
  execId: string;
  command: string[];
  envNames: string[];
  startedAt: string;
  /** Absent: 'wait' (records written before the data plane). */
  mode?: ExecMode;
}

/** An exec's state as the API shows it, from its row. */
export type ExecState = 'running' | 'exited' | 'killed' | 'failed';

export async function recordExecStart(pool: pg.Pool, r: ExecRecord): Promise<void> {
  await pool.query(
    `INSERT INTO execs (sandbox_id, exec_id, command, env_names, started_at, mode)
     VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`,
    [r.sandboxId, r.execId, storableJson(r.command), storableJson(r.envNames), r.startedAt, r.mode ?? 'wait'],
  );
}

/** Writes an exec's end, and its start too if that write was missed (the registry was down then). */
export async function recordExecEnd(
  pool: pg.Pool,
  r: ExecRecord,
  result: ExecOutput | { error: string },
): Promise<void> {
  const out = 'error' in result ? null : result;
  await pool.query(
    `INSERT INTO execs (sandbox_id, exec_id, command, env_names, started_at, exit_code, stdout, stderr, timed_out,
                        error, duration_ms, finished_at, mode)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11, now(), $12)
     ON CONFLICT (sandbox_id, exec_id) DO UPDATE SET
       exit_code = EXCLUDED.exit_code, stdout = EXCLUDED.stdout, stderr = EXCLUDED.stderr,
       timed_out = EXCLUDED.timed_out, error = EXCLUDED.error, duration_ms = EXCLUDED.duration_ms,
       finished_at = EXCLUDED.finished_at`,
    [
      r.sandboxId,
      r.execId,
      storableJson(r.command),
      storableJson(r.envNames),
      r.startedAt,
      out?.exitCode ?? null,
      cap(outputBytes(out?.stdout ?? '', out?.stdoutBase64)),
      cap(outputBytes(out?.stderr ?? '', out?.stderrBase64)),
      out?.timedOut ?? false,
      'error' in result ? storableText(result.error) : null,
      out?.durationMs ?? null,
      r.mode ?? 'wait',
    ],
  );
}

/** An exec whose activity died without recording its end (worker killed, timed out): never left open. */
export async function recordExecInterrupted(
  pool: pg.Pool,
  sandboxId: string,
  execId: string,
  reason: string,
): Promise<void> {
  await pool.query(
    `UPDATE execs SET error = $3, finished_at = now() WHERE sandbox_id = $1 AND exec_id = $2 AND finished_at IS NULL`,
    [sandboxId, execId, storableText(reason)],
  );
}

/**
 * Commands still open in sandboxes destroyed a while ago: their workflow was terminated (not
 * destroyed) or gave up recording them. The reaper closes them so nothing shows them running.
 */
export async function closeExecsOfDestroyed(pool: pg.Pool, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await pool.query(
    `UPDATE execs e SET finished_at = now(),
            error = 'interrupted: the sandbox was destroyed while the command ran; its workflow never recorded the end'
       FROM sandboxes s
      WHERE e.finished_at IS NULL AND s.id = e.sandbox_id AND s.state = 'DESTROYED'
        AND s.updated_at < now() - make_interval(secs => $1)`,
    [olderThanSeconds],
  );
  return rowCount ?? 0;
}

/**
 * Why an exec ended, when the command itself did not say: killed on request, or cut short by a
 * destroy (written by the workflow, which knows the reason; overrides an error the activity wrote).
 */
export async function recordExecOutcome(
  pool: pg.Pool,
  sandboxId: string,
  execId: string,
  outcome: { killRequested?: boolean; error?: string },
): Promise<void> {
  await pool.query(
    // A kill that lands after the command ended on its own changes nothing: it exited, it was not killed.
    `UPDATE execs SET kill_requested = kill_requested OR ($3 AND finished_at IS NULL), error = COALESCE($4, error)
      WHERE sandbox_id = $1 AND exec_id = $2`,
    [sandboxId, execId, outcome.killRequested ?? false, outcome.error ? storableText(outcome.error) : null],
  );
}

const EXEC_COLUMNS = `exec_id AS "execId", command, env_names AS "envNames", exit_code AS "exitCode", stdout, stderr,
  timed_out AS "timedOut", error, started_at AS "startedAt", finished_at AS "finishedAt", duration_ms AS "durationMs",
  mode, kill_requested AS "killRequested"`;

/** One exec as the API shows it (GET /v1/sandboxes/:id/execs). */
export interface ExecView {
  execId: string;
  command: string[];
  envNames: string[];
  exitCode: number | null;
  stdout: string;
  stderr: string;
  stdoutBase64?: string;
  stderrBase64?: string;
  timedOut: boolean;
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  mode: ExecMode;
  state: ExecState;
}

type ExecRow = Omit<ExecView, 'stdout' | 'stderr' | 'state'> & {
  stdout: Buffer;
  stderr: Buffer;
  killRequested: boolean;
};

function execView({ stdout, stderr, killRequested, ...r }: ExecRow): ExecView {
  return { ...r, state: execState(r.finishedAt, killRequested, r.error), ...outputFields(stdout, stderr) };
}

export function execState(finishedAt: unknown, killRequested: boolean, error: unknown): ExecState {
  if (!finishedAt) return 'running';
  if (killRequested) return 'killed';
  return error ? 'failed' : 'exited';
}

export async function listExecs(pool: pg.Pool, sandboxId: string): Promise<ExecView[]> {
  const { rows } = await pool.query<ExecRow>(
    `SELECT ${EXEC_COLUMNS} FROM execs WHERE sandbox_id = $1 ORDER BY started_at`,
    [sandboxId],
  );
  return rows.map(execView);
}

export async function getExec(pool: pg.Pool, sandboxId: string, execId: string): Promise<ExecView | null> {
  const { rows } = await pool.query<ExecRow>(
    `SELECT ${EXEC_COLUMNS} FROM execs WHERE sandbox_id = $1 AND exec_id = $2`,
    [sandboxId, execId],
  );
  return rows[0] ? execView(rows[0]) : null;
}

function cap(bytes: Buffer): Buffer {
  return capBytes(bytes, OUTPUT_CAP, () => '…[truncated]');
}
