// LOG_LEVEL: pino's level names. A typo is a start-up error, not a silently chattier or quieter log.
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export const DEFAULT_LOG_LEVEL: LogLevelName = 'info';

/** The level LOG_LEVEL asks for (default info); throws naming the variable and the allowed values. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevelName {
  const raw = env.LOG_LEVEL?.trim();
  if (!raw) return DEFAULT_LOG_LEVEL;
  const level = raw.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevelName;
  throw new Error(`LOG_LEVEL: '${raw}' is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
}
