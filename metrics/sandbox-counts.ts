// hourglass_sandboxes is read from the registry (PostgreSQL) at scrape time. The API names the pool
// it reads (one per process); a process without an API reports no sandboxes, so summing over an API
// fleet's targets is wrong: every API replica reports the same registry (use max).
import type pg from 'pg';
import type { Counter, Gauge } from 'prom-client';

/** A scrape waits at most this long for the registry; a slow database must not hang Prometheus. */
export const SANDBOX_COUNT_TIMEOUT_MS = 2000;

let source: pg.Pool | undefined;

/** The pool hourglass_sandboxes is read from (the API's); the last one set wins. */
export function countSandboxesIn(pool: pg.Pool): void {
  source = pool;
}

interface CountRow {
  state: string;
  driver: string;
  n: number;
}

// Live rows only: the open-rows index serves this; a DESTROYED count would scan the whole history.
// One round trip; statement_timeout makes the server end a slow count rather than leave it running.
const QUERY = `BEGIN; SET LOCAL statement_timeout = ${SANDBOX_COUNT_TIMEOUT_MS};
  SELECT state, driver, count(*)::int AS n FROM sandboxes WHERE state <> 'DESTROYED' GROUP BY 1, 2; COMMIT`;

/** Fills the gauge from the registry, or leaves it empty (and counts the failure) when that fails or is slow. */
export async function readSandboxCounts(gauge: Gauge<'state' | 'driver'>, failures: Counter): Promise<void> {
  gauge.reset();
  if (!source) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('registry read timed out')), SANDBOX_COUNT_TIMEOUT_MS);
    });
    // The race also covers a pool with no free client: the scrape answers either way.
    const results = (await Promise.race([source.query(QUERY), timeout])) as unknown as pg.QueryResult[];
    const rows = results.find((r) => r.command === 'SELECT')?.rows as CountRow[];
    for (const row of rows) gauge.set({ state: row.state, driver: row.driver }, row.n);
  } catch {
    failures.inc();
  } finally {
    clearTimeout(timer);
  }
}
