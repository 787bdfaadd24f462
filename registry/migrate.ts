// Applies registry/migrations/*.sql in order, once each, under an advisory lock so that
// several API/worker processes starting together do not race.
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { componentLogger } from '../log/logger';
import { inTransaction } from './transaction';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const LOCK_KEY = 0x686f7572; // "hour"
const log = componentLogger('registry');

export async function migrate(pool: pg.Pool): Promise<string[]> {
  const client = await pool.connect();
  // Pools not made by createPool (test set-up) attach no listener: a connection lost mid-way
  // must fail the migration, not crash the process with an unhandled 'error' event.
  const onError = (err: Error) => log.warn(`connection lost during migrations: ${err.message}`);
  client.on('error', onError);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations
         (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name),
    );
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await readFile(MIGRATIONS_DIR + file, 'utf8');
      // On the connection that holds the lock: the file and its schema_migrations row, or neither.
      await inTransaction(client, async (tx) => {
        await tx.query(sql);
        await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
      }).catch((err: Error) => {
        throw new Error(`migration ${file} failed: ${err.message}`);
      });
      applied.push(file);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.off('error', onError);
    client.release();
  }
}
