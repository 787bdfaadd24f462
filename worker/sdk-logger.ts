// The Temporal SDK's logger (runtime, worker, activity and workflow `log` calls) over the process
// logger: same format, same level, and `sandboxId` on every line about a sandbox.
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { componentLogger, type Logger } from '../log/logger';
import { sandboxIdOfWorkflow, sessionIdOfWorkflow } from '../workflows/ids';

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

// The provision and teardown workers run activities only, and the SDK warns at start that they
// poll no workflow tasks: expected, so not written.
const EXPECTED = 'No workflows registered, not polling for workflow tasks';
// Routine for every worker (four per process), at start and stop: debug, so start-up stays one block.
const ROUTINE = new Set(['Worker state changed', 'No Nexus services registered, not polling for Nexus tasks']);

export class SdkLogger implements TemporalLogger {
  constructor(
    private readonly base: Logger = componentLogger('temporal'),
    /** Lines above debug (errors aside) written at debug: for chatter such as the bundler's statistics. */
    private readonly quiet = false,
  ) {}

  log(level: LogLevel, message: string, meta: LogMetadata = {}): void {
    if (message.startsWith(EXPECTED)) return;
    const routine = ROUTINE.has(message) && level === 'INFO' && meta.state !== 'FAILED';
    const demoted = routine || (this.quiet && level !== 'ERROR' && level !== 'TRACE');
    const method = demoted ? 'debug' : (PINO_LEVEL[level] ?? 'info');
    if (!this.base.isLevelEnabled(method)) return;
    this.base[method](fields(meta), message);
  }

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/** The SDK's metadata as log fields: the ids ours, workflow/activity lines under their own component. */
export function fields(meta: LogMetadata): Record<string, unknown> {
  const { sdkComponent, error, ...rest } = meta as Record<string, unknown>;
  // String keys only: the SDK's own timestamp is a symbol key (a bigint), and pino stamps the line itself.
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(rest));
  if (sdkComponent === 'workflow' || sdkComponent === 'activity') out.component = sdkComponent;
  else if (sdkComponent !== undefined) out.sdkComponent = sdkComponent;
  if (error !== undefined) out.err = error; // pino's serializer writes its message and stack
  const workflowId = typeof rest.workflowId === 'string' ? rest.workflowId : undefined;
  const sandboxId = workflowId && sandboxIdOfWorkflow(workflowId);
  if (sandboxId) out.sandboxId = sandboxId;
  const sessionId = workflowId && sessionIdOfWorkflow(workflowId);
  if (sessionId) out.sessionId = sessionId;
  return out;
}

/** The workflow bundler's logger: webpack's statistics are not start-up news (debug only). */
export const bundlerLogger = (): TemporalLogger => new SdkLogger(componentLogger('bundler'), true);
