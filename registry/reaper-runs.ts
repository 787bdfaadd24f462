// Each reaper run's report, kept for operators.
import type pg from 'pg';

export interface StoredReport {
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  counts: Record<string, number>;
  items: unknown[];
}

export async function storeReaperRun(pool: pg.Pool, r: StoredReport): Promise<number> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO reaper_runs (started_at, finished_at, dry_run, counts, items) VALUES ($1,$2,$3,$4,$5) RETURNING id`,
    [r.startedAt, r.finishedAt, r.dryRun, JSON.stringify(r.counts), JSON.stringify(r.items)],
  );
  return Number(rows[0]!.id);
}

export async function listReaperRuns(pool: pg.Pool, limit: number) {
  const { rows } = await pool.query(
    `SELECT id::int, started_at AS "startedAt", finished_at AS "finishedAt", dry_run AS "dryRun", counts, items
     FROM reaper_runs ORDER BY id DESC LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function openRows(pool: pg.Pool) {
  const { rows } = await pool.query<{ id: string; driver: string; state: string; createdAt: string }>(
    `SELECT id, driver, state, created_at AS "createdAt" FROM sandboxes WHERE state <> 'DESTROYED'`,
  );
  return rows;
}
