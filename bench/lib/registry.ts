// Read-only access to a stack's registry (the embedded PostgreSQL): its socket and the password of
// the `hourglass` role are in the state dir. Every session is read-only, so a bench cannot change
// what it measures (the one exception, seeding, says so in its name).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

export function openRegistry(stateDir: string, port: number): pg.Pool {
  return registryPool(stateDir, port, { max: 4, options: '-c default_transaction_read_only=on' });
}

/**
 * A writable session as the registry's own role: only for a bench that measures reads among many
 * rows and seeds them (bench/list.ts), never for one that measures what the service writes.
 */
export function openRegistryForSeeding(stateDir: string, port: number): pg.Pool {
  return registryPool(stateDir, port, { max: 1 });
}

function registryPool(stateDir: string, port: number, extra: pg.PoolConfig): pg.Pool {
  const creds = JSON.parse(readFileSync(path.join(stateDir, 'postgres-credentials.json'), 'utf8')) as {
    app: { name: string; password: string };
    database: string;
  };
  const pool = new pg.Pool({
    host: path.join(stateDir, 'postgres-socket'),
    port,
    user: creds.app.name,
    password: creds.app.password,
    database: creds.database,
    ...extra,
  });
  pool.on('error', () => {}); // the stack stopping under an idle client is no error of the bench
  return pool;
}

export async function serverVersion(pool: pg.Pool): Promise<string> {
  return (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
}

/** Registry state of each id that has a row. */
export async function statesOf(pool: pg.Pool, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ id: string; state: string }>(
    'SELECT id, state FROM sandboxes WHERE id = ANY($1::text[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.state]));
}

/** How many sandboxes are in each state (all of the stack's, or those with label bench=<value>). */
export async function stateCounts(pool: pg.Pool, benchLabel?: string): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ state: string; n: string }>(
    `SELECT state, count(*) AS n FROM sandboxes ${benchLabel ? `WHERE labels->>'bench' = $1` : ''}
     GROUP BY state ORDER BY state`,
    benchLabel ? [benchLabel] : [],
  );
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

export interface TransitionEvent {
  id: string;
  to: string;
  /** Written by the workflow: when it made the transition (ms since epoch). */
  at: number;
  reason: string;
}

export async function eventsOf(pool: pg.Pool, ids: string[]): Promise<TransitionEvent[]> {
  const { rows } = await pool.query<{ id: string; to: string; at: Date; reason: string }>(
    `SELECT sandbox_id AS id, to_state AS "to", at, reason FROM sandbox_events
     WHERE sandbox_id = ANY($1::text[]) ORDER BY sandbox_id, seq`,
    [ids],
  );
  return rows.map((r) => ({ id: r.id, to: r.to, at: new Date(r.at).getTime(), reason: r.reason }));
}

/**
 * Watches the registry for sandboxes reaching a state: one query for every watched id per tick,
 * so waiting on hundreds of sandboxes costs the API nothing. Remembers when each state was first seen.
 */
export class StateWatcher {
  private readonly waiters = new Map<
    string,
    { state: string; resolve: (ms: number) => void; reject: (e: Error) => void; deadline: number }[]
  >();
  readonly firstSeen = new Map<string, Map<string, number>>();
  /** Polled until DESTROYED even with nobody waiting. */
  private readonly tracked = new Set<string>();
  private timer?: NodeJS.Timeout;
  private ticking = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly intervalMs = 25,
  ) {}

  /** Resolves with Date.now() at the poll that first saw `id` in `state`. */
  waitFor(id: string, state: string, timeoutMs: number): Promise<number> {
    const seen = this.firstSeen.get(id)?.get(state);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(id) ?? [];
      list.push({ state, resolve, reject, deadline: Date.now() + timeoutMs });
      this.waiters.set(id, list);
      this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    });
  }

  /** Records first-seen times for these ids too (without anyone waiting). */
  track(ids: string[]): void {
    for (const id of ids) this.tracked.add(id);
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const ids = [...new Set([...this.waiters.keys(), ...this.tracked])];
      if (!ids.length) return;
      const states = await statesOf(this.pool, ids);
      const now = Date.now();
      for (const [id, state] of states) {
        const seen = this.firstSeen.get(id) ?? new Map<string, number>();
        this.firstSeen.set(id, seen);
        if (!seen.has(state)) seen.set(state, now);
        if (state === 'DESTROYED') this.tracked.delete(id);
      }
      for (const [id, list] of this.waiters) {
        const keep = list.filter((w) => {
          const at = this.firstSeen.get(id)?.get(w.state);
          if (at !== undefined) {
            w.resolve(at);
          } else if (now > w.deadline) {
            w.reject(new Error(`sandbox ${id} not ${w.state} in time (registry: ${states.get(id) ?? 'no row'})`));
          } else {
            return true;
          }
          return false;
        });
        if (keep.length) this.waiters.set(id, keep);
        else this.waiters.delete(id);
      }
    } catch {
      /* a failed poll is retried on the next tick */
    } finally {
      this.ticking = false;
    }
  }
}
