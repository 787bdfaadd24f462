// Registry queries for sandboxes, their events and execs. Writes are idempotent.
import type pg from 'pg';
import type { SandboxState } from '../workflows/states';
import type { ExecOutput, SandboxStatus, TransitionEvent } from '../workflows/types';

export interface SandboxRow extends SandboxStatus {
  updatedAt: string;
}

export interface SandboxEventRow {
  seq: number;
  from: SandboxState | null;
  to: SandboxState;
  reason: string;
  at: string;
}

export interface ListFilter {
  state?: SandboxState[];
  labels?: Record<string, string>;
  sessionId?: string;
  limit: number;
  cursor?: string;
}

const OUTPUT_CAP = 64 * 1024; // bytes of stdout/stderr kept per exec

/** Applies a transition: the row moves forward only (seq), the event is written once. */
export async function recordTransition(pool: pg.Pool, e: TransitionEvent): Promise<void> {
  const s = e.sandbox;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO sandboxes (id, driver, template, state, labels, session_id, isolation, created_at, expires_at,
                              max_expires_at, destroy_reason, error, job, seq, updated_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14, now())
       ON CONFLICT (id) DO UPDATE SET
         state = EXCLUDED.state, isolation = EXCLUDED.isolation, expires_at = EXCLUDED.expires_at,
         destroy_reason = EXCLUDED.destroy_reason, error = EXCLUDED.error, job = EXCLUDED.job,
         seq = EXCLUDED.seq, updated_at = now()
       WHERE sandboxes.seq < EXCLUDED.seq`,
      [
        s.id, s.driver, s.template ?? null, s.state, JSON.stringify(s.labels), s.sessionId ?? null,
        s.isolation ?? null, s.createdAt, s.expiresAt ?? null, s.maxExpiresAt, s.destroyReason ?? null,
        s.error ?? null, s.job ? JSON.stringify(s.job) : null, e.seq,
      ],
    );
    await client.query(
      `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
       VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`,
      [e.sandboxId, e.seq, e.from, e.to, e.reason, e.at],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Marks a sandbox DESTROYED from outside its workflow (force-destroy, reaper). Appends an event
 * after the last one; a no-op when the row is already DESTROYED.
 */
export async function markDestroyed(pool: pg.Pool, id: string, reason: string, driver: string): Promise<boolean> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // A workflow that never wrote its first row still gets one, so the registry shows the outcome.
    await client.query(
      `INSERT INTO sandboxes (id, driver, state, created_at, seq) VALUES ($1, $2, 'REQUESTED', date_trunc('milliseconds', now()), 0) ON CONFLICT DO NOTHING`,
      [id, driver],
    );
    const { rows } = await client.query<{ state: SandboxState; seq: number }>(
      'SELECT state, seq FROM sandboxes WHERE id = $1 FOR UPDATE',
      [id],
    );
    const row = rows[0];
    if (!row || row.state === 'DESTROYED') {
      await client.query('ROLLBACK');
      return false;
    }
    // Leave room below: a late write from the dead workflow run (seq+1…) must not overwrite this.
    const seq = row.seq + 1000;
    await client.query(
      `UPDATE sandboxes SET state = 'DESTROYED', destroy_reason = $2, seq = $3, updated_at = now() WHERE id = $1`,
      [id, reason, seq],
    );
    await client.query(
      `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
       VALUES ($1,$2,$3,'DESTROYED',$4, date_trunc('milliseconds', now()))`,
      [id, seq, row.state, reason],
    );
    await client.query('COMMIT');
    return true;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export async function getSandbox(pool: pg.Pool, id: string): Promise<SandboxRow | null> {
  const { rows } = await pool.query(`${SELECT_SANDBOX} WHERE id = $1`, [id]);
  return rows[0] ? toSandbox(rows[0]) : null;
}

export async function listSandboxes(pool: pg.Pool, f: ListFilter): Promise<{ items: SandboxRow[]; nextCursor: string | null }> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => `$${args.push(v)}`;
  if (f.state?.length) where.push(`state = ANY(${arg(f.state)})`);
  if (f.labels && Object.keys(f.labels).length) where.push(`labels @> ${arg(JSON.stringify(f.labels))}::jsonb`);
  if (f.sessionId) where.push(`session_id = ${arg(f.sessionId)}`);
  if (f.cursor) {
    const [createdAt, id] = decodeCursor(f.cursor);
    where.push(`(created_at, id) < (${arg(createdAt)}::timestamptz, ${arg(id)})`);
  }
  const sql = `${SELECT_SANDBOX} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
               ORDER BY created_at DESC, id DESC LIMIT ${arg(f.limit + 1)}`;
  const { rows } = await pool.query(sql, args);
  const items = rows.slice(0, f.limit).map(toSandbox);
  const last = items[items.length - 1];
  const nextCursor = rows.length > f.limit && last ? encodeCursor(last.createdAt, last.id) : null;
  return { items, nextCursor };
}

export async function listEvents(pool: pg.Pool, id: string): Promise<SandboxEventRow[]> {
  const { rows } = await pool.query(
    `SELECT seq, from_state AS "from", to_state AS "to", reason, at FROM sandbox_events WHERE sandbox_id = $1 ORDER BY seq`,
    [id],
  );
  return rows;
}

export async function recordExecStart(pool: pg.Pool, sandboxId: string, execId: string, command: string[]): Promise<void> {
  await pool.query(
    `INSERT INTO execs (sandbox_id, exec_id, command, started_at) VALUES ($1,$2,$3, now()) ON CONFLICT DO NOTHING`,
    [sandboxId, execId, JSON.stringify(command)],
  );
}

export async function recordExecEnd(
  pool: pg.Pool,
  sandboxId: string,
  execId: string,
  result: ExecOutput | { error: string },
): Promise<void> {
  const out = 'error' in result ? null : result;
  await pool.query(
    `UPDATE execs SET exit_code = $3, stdout = $4, stderr = $5, timed_out = $6, error = $7,
                      duration_ms = $8, finished_at = now()
     WHERE sandbox_id = $1 AND exec_id = $2`,
    [
      sandboxId, execId, out?.exitCode ?? null, cap(out?.stdout ?? ''), cap(out?.stderr ?? ''),
      out?.timedOut ?? false, 'error' in result ? result.error : null, out?.durationMs ?? null,
    ],
  );
}

export async function listExecs(pool: pg.Pool, sandboxId: string) {
  const { rows } = await pool.query(
    `SELECT exec_id AS "execId", command, exit_code AS "exitCode", stdout, stderr, timed_out AS "timedOut", error,
            started_at AS "startedAt", finished_at AS "finishedAt", duration_ms AS "durationMs"
     FROM execs WHERE sandbox_id = $1 ORDER BY started_at`,
    [sandboxId],
  );
  return rows;
}

const SELECT_SANDBOX = `SELECT id, driver, template, state, labels, session_id, isolation, created_at, expires_at,
  max_expires_at, destroy_reason, error, job, updated_at FROM sandboxes`;

function toSandbox(r: Record<string, any>): SandboxRow {
  return {
    id: r.id,
    state: r.state,
    driver: r.driver,
    template: r.template ?? undefined,
    labels: r.labels,
    sessionId: r.session_id ?? undefined,
    isolation: r.isolation ?? undefined,
    createdAt: r.created_at,
    expiresAt: r.expires_at ?? undefined,
    maxExpiresAt: r.max_expires_at,
    destroyReason: r.destroy_reason ?? undefined,
    error: r.error ?? undefined,
    job: r.job ?? undefined,
    updatedAt: r.updated_at,
  };
}

function cap(s: string): string {
  return Buffer.byteLength(s) > OUTPUT_CAP ? `${Buffer.from(s).subarray(0, OUTPUT_CAP).toString()}…[truncated]` : s;
}

function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export class InvalidCursorError extends Error {}

function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString());
    if (Array.isArray(v) && typeof v[0] === 'string' && typeof v[1] === 'string' && !Number.isNaN(Date.parse(v[0]))) return [v[0], v[1]];
  } catch {
    /* fall through */
  }
  throw new InvalidCursorError(`cursor is not one this API returned: ${cursor}`);
}
