// Temporal and PostgreSQL for a process that has no TEMPORAL_ADDRESS / DATABASE_URL: started
// side by side under the state dir's service lock, each supervised (restarted when it dies), and
// stopped PostgreSQL first, Temporal last.
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../registry/embedded';
import type { Config } from '../config/service';
import type { Logger } from '../log/logger';
import { acquireServiceLock } from './service-lock';
import { Supervisor } from './supervisor';
import { freePort } from './free-port';
import {
  TEMPORAL_STOP_STEPS,
  startTemporalDevServer,
  stopOrphanedTemporal,
  type TemporalDevServer,
} from './temporal-server';

export interface EmbeddedServices {
  temporalAddress: string;
  databaseUrl: string;
  /** The supervisors of what runs embedded (none when both are configured). */
  supervisors: Supervisor[];
  /** PostgreSQL, then Temporal, then the lock. */
  stop(): Promise<void>;
}

export interface EmbeddedServicesOptions {
  /** Remote codec endpoint for the embedded Temporal's Web UI. */
  uiCodecEndpoint?: string;
}

export async function startEmbeddedServices(
  config: Config,
  /** Each service's lines get their own `component` under it. */
  base: Logger,
  opts: EmbeddedServicesOptions = {},
): Promise<EmbeddedServices> {
  const logger = base.child({ component: 'embedded' });
  const log = (m: string) => logger.info(m);
  if (config.temporalAddress && config.databaseUrl) {
    return {
      temporalAddress: config.temporalAddress,
      databaseUrl: config.databaseUrl,
      supervisors: [],
      stop: async () => {},
    };
  }
  secureStateDir(config.stateDir);
  const lock = await acquireServiceLock(config.stateDir);
  if (lock.staleHolder) {
    const h = lock.staleHolder;
    logger.warn(
      `the previous run (pid ${h.pid}, started ${h.startedAt}) ended without shutting down: ` +
        'recovering its embedded services',
    );
  }
  let temporal: Supervisor | undefined;
  let database: EmbeddedDatabase | undefined;
  const stop = async () => {
    await database?.stop();
    await temporal?.stop();
    await lock.release();
  };
  const started = await Promise.allSettled([
    config.temporalAddress ? Promise.resolve(undefined) : startSupervisedTemporal(config, base, opts),
    config.databaseUrl ? Promise.resolve(undefined) : startDatabase(config, base),
  ]);
  const [t, d] = started;
  if (t.status === 'fulfilled' && t.value) temporal = t.value.supervisor;
  if (d.status === 'fulfilled' && d.value) database = d.value;
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const temporalAddress = config.temporalAddress ?? (t as PromiseFulfilledResult<{ address: string }>).value.address;
  if (database) log(`embedded PostgreSQL on unix socket only; credentials in ${database.credentialsFile}`);
  return {
    temporalAddress,
    databaseUrl: config.databaseUrl ?? database!.url,
    supervisors: [temporal, database?.supervisor].filter((s): s is Supervisor => !!s),
    stop,
  };
}

function startDatabase(config: Config, base: Logger): Promise<EmbeddedDatabase> {
  const pgLogger = base.child({ component: 'postgres' });
  pgLogger.info('DATABASE_URL not set: starting embedded PostgreSQL …');
  return startEmbeddedPostgres(config.stateDir, config.embeddedPostgresPort, pgLogger);
}

async function startSupervisedTemporal(
  config: Config,
  base: Logger,
  opts: EmbeddedServicesOptions,
): Promise<{ supervisor: Supervisor; address: string }> {
  const logger = base.child({ component: 'temporal-server' });
  const log = (m: string) => logger.info(m);
  log('TEMPORAL_ADDRESS not set: starting a Temporal dev server …');
  const dbFilename = path.join(config.stateDir, 'temporal.db');
  await stopOrphanedTemporal(dbFilename, log);
  // Chosen once: a restart must come back where clients reconnect to.
  const port = config.temporalPort || (await freePort());
  let server: TemporalDevServer | undefined;
  const supervisor = new Supervisor(
    'Temporal',
    async () => {
      server = await startTemporalDevServer({
        stateDir: config.stateDir,
        dbFilename,
        port,
        // 0 = no UI
        ...(config.temporalUiPort ? { uiPort: config.temporalUiPort } : {}),
        ...(opts.uiCodecEndpoint ? { uiCodecEndpoint: opts.uiCodecEndpoint } : {}),
        log,
      });
      return server.process;
    },
    (p) => p.stop(TEMPORAL_STOP_STEPS),
    logger,
  );
  await supervisor.start();
  log(
    `Temporal dev server on ${server!.address}${server!.uiUrl ? `, Web UI on ${server!.uiUrl}` : ''} ` +
      `(pid ${server!.process.pid})`,
  );
  return { supervisor, address: server!.address };
}

/**
 * Others may not list the state dir (sandboxes, credentials, histories), but must traverse it:
 * PostgreSQL's user reaches its data dir and socket, libvirt's QEMU user its overlays.
 */
function secureStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true });
  chmodSync(stateDir, 0o711);
}
