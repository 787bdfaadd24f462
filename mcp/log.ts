// The MCP server's log. Its stdout carries the protocol, so its lines go to stderr (which MCP
// clients keep as the server's log), never through the service logger (log/destination.ts: stdout).
import pino, { type Logger } from 'pino';
import { DEFAULT_LOG_LEVEL, logLevelFromEnv } from '../log/level';

function level(): string {
  try {
    return logLevelFromEnv();
  } catch {
    return DEFAULT_LOG_LEVEL;
  }
}

export const mcpLog: Logger = pino(
  {
    level: level(),
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    base: { component: 'mcp' },
  },
  pino.destination({ dest: 2, sync: true }),
);

/** Whatever else prints with console.log/info/debug (a dependency) lands on stderr, not in the protocol. */
export function keepConsoleOffStdout(): void {
  console.log = console.error;
  console.info = console.error;
  console.debug = console.error;
}
