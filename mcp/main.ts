// `hourglass mcp`: an MCP server on stdio. One connection = one Hourglass session, opened at start,
// heartbeated while the connection lives and ended when it goes (destroying its sandboxes).
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { HourglassClient } from '../client';
import { describeFailure } from './tools/result';
import { keepConsoleOffStdout, mcpLog as log } from './log';
import { buildMcpServer } from './server';
import { McpSession } from './session';

export interface McpOptions {
  url: string;
  token?: string;
  /** The session (and its sandboxes) ends this long after the last heartbeat should this process die. */
  sessionTimeoutSeconds: number;
}

export async function runMcpServer(opts: McpOptions): Promise<void> {
  // stdout is the protocol: a stray print would break it for the client.
  keepConsoleOffStdout();
  const client = new HourglassClient({ baseUrl: opts.url, token: opts.token });
  const session = new McpSession(client, { heartbeatTimeoutSeconds: opts.sessionTimeoutSeconds, log });
  const server = buildMcpServer(client, session);
  const transport = new StdioServerTransport();

  let closing: Promise<void> | undefined;
  const shutdown = (why: string, code = 0) =>
    (closing ??= (async () => {
      log.info(`${why}: shutting down`);
      await session.end(why);
      await server.close().catch(() => {});
      process.exit(code);
    })());
  // The client going away in any of its forms: stdin closed (the usual one), the transport closed,
  // or a signal (the SDK's client sends SIGTERM 2 s after closing stdin).
  process.stdin.once('end', () => void shutdown('stdin closed'));
  process.stdin.once('close', () => void shutdown('stdin closed'));
  transport.onclose = () => void shutdown('transport closed');
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => void shutdown(signal));
  // A bug must not leave the sandboxes behind: end the session on the way out.
  process.on('uncaughtException', (err) => {
    log.error({ err }, 'uncaught exception');
    void shutdown('uncaught exception', 1);
  });
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (ignored)'));

  try {
    // Opened before the client is answered: a bad URL or token fails the start, where the user sees it.
    const sessionId = await session.id();
    log.info({ sessionId, url: opts.url }, 'MCP server ready on stdio');
  } catch (err) {
    log.error(`cannot open an Hourglass session at ${opts.url}: ${describeFailure(err)}`);
    await shutdown('start-up failed', 1);
    return;
  }
  await server.connect(transport);
}
