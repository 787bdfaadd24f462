// Registry queries for sandboxes and their events (execs: execs.ts). Writes are idempotent.
import type pg from 'pg';
import { decodeCursor, encodeCursor } from './list-cursor';
import { storableJson, storableText } from './storable';
import { inTransaction } from './transaction';
import type { SandboxState } from '../workflows/states';
import type { SandboxStatus, TransitionEvent } from '../workflows/types';

export interface SandboxRow extends SandboxStatus {
  updatedAt: string;
}

export interface SandboxEventRow {
  /** The global event id (registry/event-feed.ts): what a stream's Last-Event-ID names. */
  id: string;
  seq: number;
  from: SandboxState | null;
  to: SandboxState;
  reason: string;
  at: string;
}

export interface ListFilter {
  /** Only this owner's sandboxes (always set for non-admin callers). */
  owner?: string;
  state?: SandboxState[];
  labels?: Record<string, string>;
  sessionId?: string;
  limit: number;
  cursor?: string;
}

/** Applies a transition: the row moves forward only (seq), the event is written once. */
export async function recordTransition(pool: pg.Pool, e: TransitionEvent): Promise<TransitionEvent[]> {
  return recordTransitions(pool, [e]);
}

/**
 * Writes a sandbox's transitions in one statement (one round trip, atomic): the row takes the
 * newest snapshot unless it already holds a newer one, and every event is appended once.
 * Returns the events this call appended (a retried write returns none of those already there).
 */
export async function recordTransitions(pool: pg.Pool, events: TransitionEvent[]): Promise<TransitionEvent[]> {
  if (events.length === 0) return [];
  const newest = events.reduce((a, b) => (b.seq > a.seq ? b : a));
  const s = newest.sandbox;
  const { rows } = await pool.query<{ seq: number }>(
    `WITH row_write AS (
       INSERT INTO sandboxes (id, owner, driver, template, state, labels, session_id, isolation, limits, created_at,
                              expires_at, max_expires_at, destroy_reason, error, job, seq, updated_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16, now())
       ON CONFLICT (id) DO UPDATE SET
         state = EXCLUDED.state, isolation = EXCLUDED.isolation, limits = EXCLUDED.limits,
         expires_at = EXCLUDED.expires_at, destroy_reason = EXCLUDED.destroy_reason, error = EXCLUDED.error,
         job = EXCLUDED.job, seq = EXCLUDED.seq, updated_at = now()
       WHERE sandboxes.seq < EXCLUDED.seq
     )
     INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
     SELECT $1, * FROM unnest($17::int[], $18::text[], $19::text[], $20::text[], $21::timestamptz[])
     ON CONFLICT DO NOTHING RETURNING seq`,
    [
      s.id,
      s.owner,
      s.driver,
      storableText(s.template) ?? null,
      s.state,
      storableJson(s.labels),
      s.sessionId ?? null,
      storableText(s.isolation) ?? null,
      s.limits ? storableJson(s.limits) : null,
      s.createdAt,
      s.expiresAt ?? null,
      s.maxExpiresAt,
      storableText(s.destroyReason) ?? null,
      storableText(s.error) ?? null,
      s.job ? storableJson(s.job) : null,
      newest.seq,
      events.map((e) => e.seq),
      events.map((e) => e.from),
      events.map((e) => e.to),
      events.map((e) => storableText(e.reason)),
      events.map((e) => e.at),
    ],
  );
  const appended = new Set(rows.map((r) => r.seq));
  return events.filter((e) => appended.has(e.seq));
}

/**
 * Marks a sandbox DESTROYED from outside its workflow (force-destroy, reaper). Appends an event
 * after the last one; a no-op when the row is already DESTROYED.
 */
export async function markDestroyed(
  pool: pg.Pool,
  id: string,
  reason: string,
  driver: string,
  owner = 'unknown',
): Promise<boolean> {
  return inTransaction(pool, async (tx) => {
    // A workflow that never wrote its first row still gets one, so the registry shows the outcome.
    await tx.query(
      `INSERT INTO sandboxes (id, owner, driver, state, created_at, seq)
       VALUES ($1, $2, $3, 'REQUESTED', date_trunc('milliseconds', now()), 0) ON CONFLICT DO NOTHING`,
      [id, owner, driver],
    );
    const { rows } = await tx.query<{ state: SandboxState; seq: number }>(
      'SELECT state, seq FROM sandboxes WHERE id = $1 FOR UPDATE',
      [id],
    );
    const row = rows[0];
    // Already DESTROYED: the INSERT above found the row, so nothing was written to commit.
    if (!row || row.state === 'DESTROYED') return false;
    // Leave room below: a late write from the dead workflow run (seq+1…) must not overwrite this.
    const seq = row.seq + 1000;
    await tx.query(
      `UPDATE sandboxes SET state = 'DESTROYED', destroy_reason = $2, seq = $3, updated_at = now() WHERE id = $1`,
      [id, storableText(reason), seq],
    );
    await tx.query(
      `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
       VALUES ($1,$2,$3,'DESTROYED',$4, date_trunc('milliseconds', now())) ON CONFLICT DO NOTHING`,
      [id, seq, row.state, storableText(reason)],
    );
    return true;
  });
}

export async function getSandbox(pool: pg.Pool, id: string): Promise<SandboxRow | null> {
  const { rows } = await pool.query(`${SELECT_SANDBOX} WHERE id = $1`, [id]);
  return rows[0] ? toSandbox(rows[0]) : null;
}

export async function listSandboxes(
  pool: pg.Pool,
  f: ListFilter,
): Promise<{ items: SandboxRow[]; nextCursor: string | null }> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => `$${args.push(v)}`;
  if (f.owner !== undefined) where.push(`owner = ${arg(f.owner)}`);
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

export async function countLiveSandboxes(pool: pg.Pool, owner: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM sandboxes WHERE owner = $1 AND state <> 'DESTROYED'`,
    [owner],
  );
  return rows[0]!.n;
}

export async function listEvents(pool: pg.Pool, id: string): Promise<SandboxEventRow[]> {
  const { rows } = await pool.query(
    `SELECT id::text AS id, seq, from_state AS "from", to_state AS "to", reason, at
     FROM sandbox_events WHERE sandbox_id = $1 ORDER BY seq`,
    [id],
  );
  return rows;
}

const SELECT_SANDBOX = `SELECT id, owner, driver, template, state, labels, session_id, isolation, limits, created_at,
  expires_at, max_expires_at, destroy_reason, error, job, updated_at FROM sandboxes`;

function toSandbox(r: pg.QueryResultRow): SandboxRow {
  return {
    id: r.id,
    owner: r.owner,
    state: r.state,
    driver: r.driver,
    template: r.template ?? undefined,
    labels: r.labels,
    sessionId: r.session_id ?? undefined,
    isolation: r.isolation ?? undefined,
    limits: r.limits ?? undefined,
    createdAt: r.created_at,
    expiresAt: r.expires_at ?? undefined,
    maxExpiresAt: r.max_expires_at,
    destroyReason: r.destroy_reason ?? undefined,
    error: r.error ?? undefined,
    job: r.job ?? undefined,
    updatedAt: r.updated_at,
  };
}
