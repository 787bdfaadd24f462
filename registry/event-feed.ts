// The global event feed: every sandbox event in commit order (migration 005's `id`), with the
// sandbox's owner, driver, labels and session joined in. Live streams (SSE) and webhooks read it
// after the last id they handed out, so a resume is exact: no gap, no duplicate.
import type pg from 'pg';
import type { SandboxState } from '../workflows/states';
import { eventIdSchema } from './event-id';
import { eventType } from './event-types';

export interface FeedEvent {
  /** The global event id (a bigint) as a decimal string: SSE `id:` and resume point. */
  id: string;
  /** 'sandbox.' + the state entered, lowercased: 'sandbox.running', 'sandbox.expired'. */
  type: string;
  sandboxId: string;
  owner: string;
  driver: string;
  labels: Record<string, string>;
  sessionId?: string;
  /** The sandbox's own transition number. */
  seq: number;
  from: SandboxState | null;
  to: SandboxState;
  reason: string;
  at: string;
}

export interface FeedFilter {
  owner?: string;
  sandboxId?: string;
  /** Events entering one of these states. */
  states?: SandboxState[];
  /** The sandbox carries every one of these labels. */
  labels?: Record<string, string>;
  sessionId?: string;
}

export interface FeedPage {
  events: FeedEvent[];
  /**
   * Every matching event with an id <= through has been read (it is in `events` or was before
   * afterId): the next read starts after it. A full page ends at its last event; a short one at
   * the newest id committed when the read ran, so a rarely-matching filter still moves forward.
   */
  through: string;
}

/**
 * Events with id > afterId that match the filter, oldest first, at most `limit`, and how far the
 * read is known to be complete (see FeedPage.through).
 */
export async function readFeedPage(
  pool: pg.Pool,
  afterId: string,
  filter: FeedFilter,
  limit: number,
): Promise<FeedPage> {
  // Ids are bigints, passed as decimal strings so nothing rounds past 2^53; callers validated them already.
  if (!eventIdSchema.safeParse(afterId).success) throw new Error(`not an event id: ${afterId}`);
  const args: unknown[] = [];
  const arg = (v: unknown) => `$${args.push(v)}`;
  const where = [`e.id > ${arg(afterId)}::bigint`];
  if (filter.owner !== undefined) where.push(`s.owner = ${arg(filter.owner)}`);
  if (filter.sandboxId !== undefined) where.push(`e.sandbox_id = ${arg(filter.sandboxId)}`);
  if (filter.states?.length) where.push(`e.to_state = ANY(${arg(filter.states)})`);
  if (filter.labels && Object.keys(filter.labels).length) {
    where.push(`s.labels @> ${arg(JSON.stringify(filter.labels))}::jsonb`);
  }
  if (filter.sessionId !== undefined) where.push(`s.session_id = ${arg(filter.sessionId)}`);
  // One statement, one snapshot: the newest id it sees bounds what the page is complete up to
  // (ids are handed out in commit order, so no smaller id can commit later). The lateral join
  // keeps that one row when no event matches.
  const { rows } = await pool.query(
    `SELECT n.newest::text AS newest, p.id::text AS id, p.sandbox_id, p.owner, p.driver, p.labels, p.session_id,
            p.seq, p.from_state, p.to_state, p.reason, p.at
       FROM (SELECT COALESCE(max(id), 0) AS newest FROM sandbox_events) n
       LEFT JOIN LATERAL (
         SELECT e.id, e.sandbox_id, s.owner, s.driver, s.labels, s.session_id,
                e.seq, e.from_state, e.to_state, e.reason, e.at
           FROM sandbox_events e JOIN sandboxes s ON s.id = e.sandbox_id
          WHERE ${where.join(' AND ')}
          ORDER BY e.id LIMIT ${arg(limit)}
       ) p ON true
      ORDER BY p.id`,
    args,
  );
  const newest = (rows[0]?.newest as string | undefined) ?? afterId;
  const events = rows.filter((r) => r.id !== null).map(toFeedEvent);
  const last = events[events.length - 1];
  const through = events.length === limit ? last!.id : maxId(newest, afterId);
  return { events, through };
}

/** The largest of some decimal event ids. */
export function maxId(...ids: string[]): string {
  return ids.reduce((a, b) => (compareIds(a, b) >= 0 ? a : b));
}

/** Compares two decimal event ids numerically (they may exceed 2^53). */
export function compareIds(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** The newest committed event id ('0' when there is none): "from now on" for a new follower. */
export async function latestEventId(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(`SELECT COALESCE(max(id), 0)::text AS id FROM sandbox_events`);
  return rows[0]!.id;
}

function toFeedEvent(r: pg.QueryResultRow): FeedEvent {
  const event: FeedEvent = {
    id: r.id,
    type: eventType(r.to_state),
    sandboxId: r.sandbox_id,
    owner: r.owner,
    driver: r.driver,
    labels: r.labels ?? {},
    seq: r.seq,
    from: r.from_state,
    to: r.to_state,
    reason: r.reason,
    at: r.at,
  };
  if (r.session_id) event.sessionId = r.session_id;
  return event;
}
