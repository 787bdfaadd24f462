// Starts what a process runs: embedded Temporal/PostgreSQL when not configured, the registry
// migrations, the worker and the API. `npm start` runs all of it in one process.
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type pg from 'pg';
import { createApp } from '../api/app';
import { SandboxService } from '../api/sandboxes/service';
import { SessionService } from '../api/sessions/service';
import { loadHypervisors, type HypervisorSet } from '../hypervisors/index';
import { migrate } from '../registry/migrate';
import { createPool } from '../registry/pool';
import { dataConverter } from '../codec/data-converter';
import { loadCodecKeys } from '../codec/keys';
import { redactedDatabaseUrl, startupBanner } from './banner';
import { isLoopback, type Config } from '../config/service';
import { startEmbeddedServices } from './embedded-services';
import { createHealthCheck } from './health';
import { ensureReaperSchedule } from './reaper-schedule';
import { ensureSearchAttributes } from './ensure-search-attributes';
import { createWorkers } from './worker';

export interface RuntimeOptions {
  worker: boolean;
  api: boolean;
  log?: (msg: string) => void;
}

export interface Runtime {
  temporalAddress: string;
  databaseUrl: string;
  apiUrl?: string;
  client: Client;
  pool: pg.Pool;
  stop(): Promise<void>;
}

export async function startRuntime(config: Config, opts: RuntimeOptions): Promise<Runtime> {
  const log = opts.log ?? ((m: string) => console.log(`[hourglass] ${m}`));
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch((err: Error) => log(`shutdown step failed: ${err.message}`));
  };
  try {
    // Stopped last: PostgreSQL after the pool, Temporal after PostgreSQL.
    // The embedded UI decodes payloads through this process's codec endpoint (when it serves the API).
    const uiCodecEndpoint = opts.api && config.port ? `http://localhost:${config.port}/v1/codec` : undefined;
    const embedded = await startEmbeddedServices(config, log, { uiCodecEndpoint });
    stops.push(() => embedded.stop());
    const { temporalAddress, databaseUrl } = embedded;
    const pool = createPool(databaseUrl);
    stops.push(() => pool.end());
    const applied = await migrate(pool);
    if (applied.length) log(`registry migrations applied: ${applied.join(', ')}`);

    const connection = await Connection.connect({ address: temporalAddress });
    stops.push(() => connection.close());
    await ensureSearchAttributes(connection, config.temporalNamespace, { addMissing: !config.temporalAddress, log });
    const codecKeys = loadCodecKeys(process.env, config.stateDir);
    const converter = dataConverter(codecKeys);
    const client = new Client({ connection, namespace: config.temporalNamespace, dataConverter: converter });

    let hypervisors: HypervisorSet | undefined;
    let reaper: { scheduleId: string; intervalSeconds: number } | undefined;
    if (opts.worker) {
      hypervisors = loadHypervisors(config.drivers, config.stateDir);
      const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
      const worker = await createWorkers({
        connection: nativeConnection,
        namespace: config.temporalNamespace,
        taskQueue: config.taskQueue,
        pool,
        hypervisors,
        client,
        dataConverter: converter,
        tuning: config.worker,
      });
      const running = worker.run();
      stops.push(async () => {
        worker.shutdown();
        await running;
        await nativeConnection.close();
        await hypervisors!.close();
      });
      log(`worker polling task queue '${config.taskQueue}' with drivers: ${hypervisors.names.join(', ')}`);
      const scheduleId = await ensureReaperSchedule(client, {
        taskQueue: config.taskQueue,
        intervalSeconds: config.reaperIntervalSeconds,
        graceSeconds: config.reaperGraceSeconds,
      });
      reaper = { scheduleId, intervalSeconds: config.reaperIntervalSeconds };
    }

    let apiUrl: string | undefined;
    if (opts.api) {
      const drivers = config.drivers.enabled;
      const sessions = new SessionService(client, config.taskQueue);
      const sandboxes = new SandboxService(
        client,
        pool,
        {
          taskQueue: config.taskQueue,
          drivers,
          defaultDriver: config.drivers.defaultDriver,
          defaultMaxLifetimeSeconds: config.defaultMaxLifetimeSeconds,
          readyTimeoutSeconds: config.readyTimeoutSeconds,
          limits: config.limits,
          maxSandboxesPerOwner: config.maxSandboxesPerOwner,
          maxPendingCreates: config.maxPendingCreates,
        },
        sessions,
      );
      const app = createApp({
        sandboxes,
        sessions,
        reaperGraceSeconds: config.reaperGraceSeconds,
        tokens: config.tokens,
        insecureNoAuth: config.insecureNoAuth,
        codec: { codec: converter.payloadCodecs![0]!, uiOrigins: temporalUiOrigins(config) },
        health: createHealthCheck({ pool, connection, supervisors: embedded.supervisors }),
      });
      const server: Server = await new Promise((resolve, reject) => {
        const s = app.listen(config.port, config.host, () => resolve(s)).once('error', reject);
      });
      stops.push(() => new Promise((r) => server.close(r)));
      const address = server.address();
      const shownHost = isLoopback(config.host)
        ? 'localhost'
        : config.host.includes(':')
          ? `[${config.host}]`
          : config.host;
      apiUrl = `http://${shownHost}:${typeof address === 'object' && address ? address.port : config.port}`;
      log(`API listening on ${apiUrl}`);
    }
    log(
      startupBanner({
        apiUrl,
        host: config.host,
        tokens: config.tokens,
        temporalAddress,
        temporalEmbedded: !config.temporalAddress,
        temporalUiUrl:
          !config.temporalAddress && config.temporalUiPort ? `http://localhost:${config.temporalUiPort}` : undefined,
        registry: config.databaseUrl
          ? redactedDatabaseUrl(config.databaseUrl)
          : 'embedded PostgreSQL (unix socket only)',
        codecKeys,
        drivers: hypervisors ?? config.drivers.enabled,
        defaultDriver: config.drivers.defaultDriver,
        taskQueue: config.taskQueue,
        reaper,
      }),
    );
    return { temporalAddress, databaseUrl, apiUrl, client, pool, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Browser origins of the Temporal Web UI that may call the codec endpoint. */
function temporalUiOrigins(config: Config): string[] {
  if (config.codecCorsOrigins) return config.codecCorsOrigins;
  return config.temporalUiPort
    ? [`http://localhost:${config.temporalUiPort}`, `http://127.0.0.1:${config.temporalUiPort}`]
    : [];
}
