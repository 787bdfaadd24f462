// Starts what a process runs: embedded Temporal/PostgreSQL when not configured, the registry
// migrations, the worker and the API. `npm start` runs all of it in one process.
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type pg from 'pg';
import { createApp } from '../api/app';
import { EventHub } from '../api/events/hub';
import { ExecOutputHub } from '../api/execs/output-hub';
import { applyServerTimeouts } from '../api/server-timeouts';
import { SandboxService } from '../api/sandboxes/service';
import { SessionService } from '../api/sessions/service';
import { WebhookService } from '../api/webhooks/service';
import { ensureWebhookWorkflows } from '../api/webhooks/workflow';
import { loadHypervisors, type HypervisorSet } from '../hypervisors/index';
import { migrate } from '../registry/migrate';
import { createPool, POOL_SIZE_PER_ROLE } from '../registry/pool';
import { countSandboxesIn } from '../metrics/sandbox-counts';
import { watchRegistryPool } from '../metrics/registry-pool';
import { startMetricsServer } from '../metrics/worker-server';
import { dataConverter } from '../codec/data-converter';
import { loadCodecKeys } from '../codec/keys';
import { logger as processLogger, type Logger } from '../log/logger';
import { redactedDatabaseUrl, startupBanner, startupFields, type BannerInfo } from './banner';
import { isLoopback, type Config } from '../config/service';
import { startEmbeddedServices } from './embedded-services';
import { createHealthCheck } from './health';
import { ensureReaperSchedule } from './reaper-schedule';
import { ensureSearchAttributes } from './ensure-search-attributes';
import { createWorkers } from './worker';

export interface RuntimeOptions {
  worker: boolean;
  api: boolean;
  /** Where the service's lines go (default: the process logger); each part adds its `component`. */
  logger?: Logger;
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
  const base = opts.logger ?? processLogger;
  const logger = base.child({ component: 'runtime' });
  const log = (m: string) => logger.info(m);
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn().catch((err: Error) => logger.warn({ err }, 'shutdown step failed'));
  };
  try {
    // Stopped last: PostgreSQL after the pool, Temporal after PostgreSQL.
    // The embedded UI decodes payloads through this process's codec endpoint (when it serves the API).
    const uiCodecEndpoint = opts.api && config.port ? `http://localhost:${config.port}/v1/codec` : undefined;
    const embedded = await startEmbeddedServices(config, base, { uiCodecEndpoint });
    stops.push(() => embedded.stop());
    const { temporalAddress, databaseUrl } = embedded;
    // API and worker in one process (`dev`) share one pool with the room the two processes would
    // have. (At 1,000 background commands 10 and 20 measured alike: bench/RESULTS.md, issue 11.)
    const roles = Number(Boolean(opts.api)) + Number(Boolean(opts.worker));
    const pool = createPool(databaseUrl, config.registryPoolSize || POOL_SIZE_PER_ROLE * Math.max(1, roles));
    stops.push(() => pool.end());
    watchRegistryPool(pool);
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
        webhooks: {
          codecKeys,
          allowPrivate: config.webhookAllowPrivate,
          retryForSeconds: config.webhookRetryForSeconds,
        },
      });
      const running = worker.run();
      stops.push(async () => {
        worker.shutdown();
        await running;
        logger.info('workers stopped (in-flight activities done)');
        await nativeConnection.close();
        await hypervisors!.close();
      });
      logger.debug(`worker polling task queue '${config.taskQueue}' with drivers: ${hypervisors.names.join(', ')}`);
      const scheduleId = await ensureReaperSchedule(client, {
        taskQueue: config.taskQueue,
        intervalSeconds: config.reaperIntervalSeconds,
        graceSeconds: config.reaperGraceSeconds,
      });
      reaper = { scheduleId, intervalSeconds: config.reaperIntervalSeconds };
      // A webhook whose workflow was terminated (or lost) resumes from its registry cursor. In the
      // background: thousands of webhooks must not hold the service's start-up.
      void ensureWebhookWorkflows(client, pool, config.taskQueue).then(
        (r) => {
          const line = `webhook workflows ensured: ${r.checked} live webhooks checked, ${r.failed} failed`;
          if (r.failed) logger.warn(`${line} (first: ${r.firstError})`);
          else logger.info(line);
        },
        (err: Error) => logger.warn(`webhook workflows not ensured: ${err.message}`),
      );
      if (config.metricsPort) {
        const metrics = await startMetricsServer({ host: config.metricsHost, port: config.metricsPort });
        stops.push(() => metrics.close());
        const open = isLoopback(config.metricsHost) ? '' : ' (beyond loopback, no auth: a network you trust only)';
        logger.info(`worker metrics on ${metrics.url}${open}`);
      }
    }

    let apiUrl: string | undefined;
    if (opts.api) {
      countSandboxesIn(pool); // hourglass_sandboxes is the API's to serve
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
          maxRunningExecsPerOwner: config.maxRunningExecsPerOwner,
          maxTransfersPerOwner: config.maxTransfersPerOwner,
        },
        sessions,
      );
      const webhooks = new WebhookService(client, pool, {
        taskQueue: config.taskQueue,
        codecKeys,
        allowPrivate: config.webhookAllowPrivate,
        maxWebhooksPerOwner: config.maxWebhooksPerOwner,
      });
      // Live event streams; closed before the server, whose close() would wait for them forever.
      const events = new EventHub(pool);
      const execOutput = new ExecOutputHub(pool);
      const app = createApp({
        sandboxes,
        sessions,
        webhooks,
        events,
        execOutput,
        reaperGraceSeconds: config.reaperGraceSeconds,
        tokens: config.tokens,
        insecureNoAuth: config.insecureNoAuth,
        codec: { codec: converter.payloadCodecs![0]!, uiOrigins: temporalUiOrigins(config) },
        health: createHealthCheck({ pool, connection, supervisors: embedded.supervisors }),
      });
      const server: Server = await new Promise((resolve, reject) => {
        const s = app.listen(config.port, config.host, () => resolve(s)).once('error', reject);
        applyServerTimeouts(s); // a slow 100 MiB upload is not cut at Node's 300 s
      });
      stops.push(() => new Promise((r) => server.close(r)));
      stops.push(() => events.close());
      stops.push(() => execOutput.close());
      const address = server.address();
      const shownHost = isLoopback(config.host)
        ? 'localhost'
        : config.host.includes(':')
          ? `[${config.host}]`
          : config.host;
      apiUrl = `http://${shownHost}:${typeof address === 'object' && address ? address.port : config.port}`;
      logger.debug(`API listening on ${apiUrl}`);
    }
    const banner: BannerInfo = {
      apiUrl,
      host: config.host,
      tokens: config.tokens,
      temporalAddress,
      temporalEmbedded: !config.temporalAddress,
      temporalUiUrl:
        !config.temporalAddress && config.temporalUiPort ? `http://localhost:${config.temporalUiPort}` : undefined,
      registry: config.databaseUrl ? redactedDatabaseUrl(config.databaseUrl) : 'embedded PostgreSQL (unix socket only)',
      codecKeys,
      drivers: hypervisors ?? config.drivers.enabled,
      defaultDriver: config.drivers.defaultDriver,
      taskQueue: config.taskQueue,
      reaper,
      webhooks: { allowPrivate: config.webhookAllowPrivate, retryForSeconds: config.webhookRetryForSeconds },
    };
    // One record: the text for a terminal, the same facts as fields for a JSON reader.
    logger.info({ startup: startupFields(banner) }, startupBanner(banner));
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
