// Registry queries for webhooks (subscriptions), their deliveries and each delivery's attempts.
// The `webhook:<id>` workflow owns the progress (its cursor); these rows are what the API shows and
// what a new run of the workflow starts from.
import type pg from 'pg';
import type { SealedSecret } from '../codec/secret-box';
import { storableText } from './storable';
import { inTransaction } from './transaction';

export interface Webhook {
  id: string;
  owner: string;
  /** Created by an admin: every owner's sandboxes' events, not only the owner's own. */
  allOwners: boolean;
  url: string;
  events: string[];
  /** The last event id finished with (a decimal string). */
  cursor: string;
  createdAt: string;
  deletedAt?: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'expired' | 'failed';

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  statusCode?: number;
  error?: string;
  durationMs: number;
}

export interface Delivery {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  sandboxId: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode?: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  attemptLog: DeliveryAttempt[];
}

/** What a delivery is about: enough to write its row before the first attempt. */
export interface DeliveryKey {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  sandboxId: string;
}

/** The receiver dedupes on this: one id per (webhook, event), the same on every attempt. */
export const deliveryIdOf = (webhookId: string, eventId: string) => `${webhookId}:${eventId}`;

const SELECT_WEBHOOK = `SELECT id, owner, all_owners, url, events, cursor::text AS cursor, created_at, deleted_at
  FROM webhooks`;

/** Refused: the owner already has `max` live webhooks. */
export class WebhookQuotaError extends Error {
  constructor(
    readonly live: number,
    readonly max: number,
  ) {
    super(`${live} live webhooks (at most ${max})`);
  }
}

/**
 * A new subscription starts after the newest event committed now: it receives what happens next.
 * With `maxPerOwner`, refused (WebhookQuotaError) once the owner has that many live webhooks;
 * creates of one owner take turns (an advisory lock), so racing ones cannot pass the limit.
 */
export async function insertWebhook(
  pool: pg.Pool,
  w: { id: string; owner: string; allOwners: boolean; url: string; events: string[]; secret: SealedSecret },
  maxPerOwner?: number,
): Promise<Webhook> {
  return inTransaction(pool, async (tx) => {
    if (maxPerOwner !== undefined) {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('hourglass webhooks of ' || $1))`, [w.owner]);
      const { rows } = await tx.query<{ live: number }>(
        'SELECT count(*)::int AS live FROM webhooks WHERE owner = $1 AND deleted_at IS NULL',
        [w.owner],
      );
      const live = rows[0]!.live;
      if (live >= maxPerOwner) throw new WebhookQuotaError(live, maxPerOwner);
    }
    const { rows } = await tx.query(
      `INSERT INTO webhooks (id, owner, all_owners, url, events, secret_key_id, secret_sealed, cursor)
       VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(max(id), 0) FROM sandbox_events))
       RETURNING id, owner, all_owners, url, events, cursor::text AS cursor, created_at, deleted_at`,
      [w.id, w.owner, w.allOwners, w.url, w.events, w.secret.keyId, w.secret.sealed],
    );
    return toWebhook(rows[0]!);
  });
}

/** A webhook, deleted or not (null when unknown). */
export async function getWebhook(pool: pg.Pool, id: string): Promise<Webhook | null> {
  const { rows } = await pool.query(`${SELECT_WEBHOOK} WHERE id = $1`, [id]);
  return rows[0] ? toWebhook(rows[0]) : null;
}

/** A webhook with its sealed secret: for the worker that signs deliveries, never for the API's answers. */
export async function getWebhookWithSecret(
  pool: pg.Pool,
  id: string,
): Promise<(Webhook & { secret: SealedSecret }) | null> {
  const { rows } = await pool.query(
    `SELECT id, owner, all_owners, url, events, cursor::text AS cursor, created_at, deleted_at,
            secret_key_id, secret_sealed FROM webhooks WHERE id = $1`,
    [id],
  );
  const r = rows[0];
  return r ? { ...toWebhook(r), secret: { keyId: r.secret_key_id, sealed: r.secret_sealed } } : null;
}

/** Live webhooks, newest first; one owner's unless `owner` is undefined (admins). */
export async function listWebhooks(pool: pg.Pool, owner: string | undefined, limit = 500): Promise<Webhook[]> {
  const args: unknown[] = [limit];
  const byOwner = owner === undefined ? '' : `AND owner = $${args.push(owner)}`;
  const { rows } = await pool.query(
    `${SELECT_WEBHOOK} WHERE deleted_at IS NULL ${byOwner} ORDER BY created_at DESC, id DESC LIMIT $1`,
    args,
  );
  return rows.map(toWebhook);
}

/** Live webhooks by id, `limit` after `afterId` (every owner's): pages for the worker's start-up sweep. */
export async function listLiveWebhooksPage(pool: pg.Pool, afterId: string, limit: number): Promise<Webhook[]> {
  const { rows } = await pool.query(`${SELECT_WEBHOOK} WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2`, [
    afterId,
    limit,
  ]);
  return rows.map(toWebhook);
}

/** Marks a webhook deleted; false when it already was (or does not exist). */
export async function markWebhookDeleted(pool: pg.Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE webhooks SET deleted_at = date_trunc('milliseconds', now()) WHERE id = $1 AND deleted_at IS NULL`,
    [id],
  );
  return rowCount === 1;
}

/** The workflow's progress, mirrored for the API and for a run started again later. Only moves forward. */
export async function advanceWebhookCursor(pool: pg.Pool, id: string, cursor: string): Promise<void> {
  await pool.query('UPDATE webhooks SET cursor = GREATEST(cursor, $2::bigint) WHERE id = $1', [id, cursor]);
}

/** Writes the delivery's row if it is new; returns its status (a delivered one is never sent again). */
export async function openDelivery(pool: pg.Pool, d: DeliveryKey): Promise<DeliveryStatus> {
  const { rows } = await pool.query<{ status: DeliveryStatus }>(
    `INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, sandbox_id, status)
     VALUES ($1, $2, $3, $4, $5, 'pending')
     ON CONFLICT (id) DO UPDATE SET updated_at = webhook_deliveries.updated_at
     RETURNING status`,
    [d.id, d.webhookId, d.eventId, d.eventType, d.sandboxId],
  );
  return rows[0]!.status;
}

/**
 * One HTTP attempt; a 2xx one marks the delivery delivered. Attempts are numbered here (1, 2, …
 * per delivery), not by Temporal: its attempt count starts at 1 again in a restarted workflow, and
 * every attempt that reached the receiver belongs in the log. Returns the attempt's number.
 */
export async function recordDeliveryAttempt(
  pool: pg.Pool,
  deliveryId: string,
  a: Omit<DeliveryAttempt, 'attempt'> & { delivered: boolean },
): Promise<number> {
  const error = storableText(a.error)?.slice(0, 2000) ?? null;
  return inTransaction(pool, async (tx) => {
    // The delivery's row lock makes two attempts recorded at once take turns for their numbers.
    await tx.query('SELECT 1 FROM webhook_deliveries WHERE id = $1 FOR UPDATE', [deliveryId]);
    const { rows } = await tx.query<{ attempt: number }>(
      `INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
       SELECT $1, COALESCE(max(attempt), 0) + 1, $2, $3, $4, $5 FROM webhook_attempts WHERE delivery_id = $1
       RETURNING attempt`,
      [deliveryId, a.at, a.statusCode ?? null, error, Math.round(a.durationMs)],
    );
    await tx.query(
      `UPDATE webhook_deliveries SET
         attempts = (SELECT count(*) FROM webhook_attempts WHERE delivery_id = $1),
         last_status_code = $2, last_error = $3, updated_at = date_trunc('milliseconds', now()),
         status = CASE WHEN $4 AND status = 'pending' THEN 'delivered' ELSE status END,
         finished_at = CASE WHEN $4 AND status = 'pending' THEN date_trunc('milliseconds', now()) ELSE finished_at END
       WHERE id = $1`,
      [deliveryId, a.statusCode ?? null, error, a.delivered],
    );
    return rows[0]!.attempt;
  });
}

/** Gives up on a pending delivery: `expired` (retried for too long) or `failed` (not retryable). */
export async function settleDelivery(
  pool: pg.Pool,
  d: DeliveryKey,
  status: 'expired' | 'failed',
  reason: string,
): Promise<void> {
  await openDelivery(pool, d); // the first attempt may never have started
  await pool.query(
    `UPDATE webhook_deliveries SET status = $2, last_error = COALESCE(last_error, $3),
       updated_at = date_trunc('milliseconds', now()), finished_at = date_trunc('milliseconds', now())
     WHERE id = $1 AND status = 'pending'`,
    [d.id, status, storableText(reason)?.slice(0, 2000) ?? null],
  );
}

/** A webhook's deliveries, newest event first, each with its attempts; `before`: an event id to page from. */
export async function listDeliveries(
  pool: pg.Pool,
  webhookId: string,
  opts: { limit: number; before?: string },
): Promise<{ items: Delivery[]; nextCursor: string | null }> {
  const args: unknown[] = [webhookId, opts.limit + 1];
  const before = opts.before === undefined ? '' : `AND d.event_id < $${args.push(opts.before)}::bigint`;
  const { rows } = await pool.query(
    `SELECT d.id, d.webhook_id, d.event_id::text AS event_id, d.event_type, d.sandbox_id, d.status, d.attempts,
            d.last_status_code, d.last_error, d.created_at, d.updated_at, d.finished_at,
            COALESCE((SELECT json_agg(json_build_object(
                        'attempt', a.attempt, 'at', a.at, 'statusCode', a.status_code, 'error', a.error,
                        'durationMs', a.duration_ms) ORDER BY a.attempt)
                      FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS attempt_log
       FROM webhook_deliveries d
      WHERE d.webhook_id = $1 ${before}
      ORDER BY d.event_id DESC LIMIT $2`,
    args,
  );
  const items = rows.slice(0, opts.limit).map(toDelivery);
  const nextCursor = rows.length > opts.limit ? items[items.length - 1]!.eventId : null;
  return { items, nextCursor };
}

function toWebhook(r: pg.QueryResultRow): Webhook {
  const w: Webhook = {
    id: r.id,
    owner: r.owner,
    allOwners: r.all_owners,
    url: r.url,
    events: r.events,
    cursor: r.cursor,
    createdAt: r.created_at,
  };
  if (r.deleted_at) w.deletedAt = r.deleted_at;
  return w;
}

function toDelivery(r: pg.QueryResultRow): Delivery {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    eventId: r.event_id,
    eventType: r.event_type,
    sandboxId: r.sandbox_id,
    status: r.status,
    attempts: r.attempts,
    lastStatusCode: r.last_status_code ?? undefined,
    lastError: r.last_error ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at ?? undefined,
    // json_build_object leaves timestamps as PostgreSQL wrote them: normalise to ISO like the rest.
    attemptLog: (r.attempt_log as DeliveryAttempt[]).map((a) => ({
      attempt: a.attempt,
      at: new Date(a.at).toISOString(),
      ...(a.statusCode !== null && a.statusCode !== undefined ? { statusCode: a.statusCode } : {}),
      ...(a.error ? { error: a.error } : {}),
      durationMs: a.durationMs,
    })),
  };
}
