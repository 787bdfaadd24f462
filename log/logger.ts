// The process logger (pino). Everything the service says goes through it or a child of it, so one
// LOG_LEVEL, one format and one redaction list apply to every line.
import pino, { type Logger } from 'pino';
import { DEFAULT_LOG_LEVEL, logLevelFromEnv } from './level';
import { sink } from './destination';

export type { Logger };

// Never written, whoever passes them: credentials, request bodies, Temporal payloads.
const REDACTED = [
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'body',
  '*.body',
  'payloads',
  '*.payloads',
];

function levelAtImport(): string {
  try {
    return logLevelFromEnv();
  } catch {
    return DEFAULT_LOG_LEVEL; // loadConfig() reports the bad value as a start-up error
  }
}

export const logger: Logger = pino(
  {
    level: levelAtImport(),
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"info" rather than 30: what log collectors and people grep for.
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACTED, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
  },
  sink,
);

/** A logger for one part of the service (`component` on every line). */
export const componentLogger = (component: string, bindings: Record<string, unknown> = {}): Logger =>
  logger.child({ component, ...bindings });

/** A logger for lines about one sandbox: every one carries its `sandboxId`. */
export const sandboxLogger = (parent: Logger, sandboxId: string): Logger => parent.child({ sandboxId });
