// The MCP server: the Hourglass tools over one typed client, bound to the session this connection owns.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { HourglassClient } from '../client';
import pkg from '../package.json' with { type: 'json' };
import type { McpSession } from './session';
import { registerExecTool } from './tools/exec';
import { registerFileTools } from './tools/files';
import { registerSandboxTools } from './tools/sandboxes';

const INSTRUCTIONS =
  'Hourglass sandboxes are isolated Linux environments with a lease. Call create_sandbox first, then ' +
  'exec, write_file, read_file and list_files with its id; paths are relative to the sandbox workspace. ' +
  'Every sandbox created here is destroyed when this connection closes or its lease ends (renew_lease).';

export function buildMcpServer(client: HourglassClient, session: McpSession): McpServer {
  const server = new McpServer({ name: 'hourglass', version: pkg.version }, { instructions: INSTRUCTIONS });
  registerSandboxTools(server, client, session);
  registerExecTool(server, client);
  registerFileTools(server, client);
  return server;
}
