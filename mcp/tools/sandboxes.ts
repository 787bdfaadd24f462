// Sandbox life: create_sandbox, list_sandboxes, renew_lease, destroy_sandbox.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createSandboxBody, destroyBody, renewBody } from '../../api/schemas';
import { HourglassApiError, type HourglassClient } from '../../client';
import type { SandboxStatus } from '../../client';
import { SANDBOX_STATES } from '../../workflows/states';
import type { McpSession } from '../session';
import { guarded, json } from './result';
import { sandboxId } from './sandbox-id';

/** A lease long enough for an agent's task; the sandbox ends with the MCP connection anyway. */
export const DEFAULT_TTL_SECONDS = 3600;
/** How long destroy_sandbox waits to see DESTROYED (a VM's teardown takes seconds). */
const DESTROY_WAIT_MS = 30_000;

const create = createSandboxBody.shape;

export function registerSandboxTools(server: McpServer, client: HourglassClient, session: McpSession): void {
  server.registerTool(
    'create_sandbox',
    {
      title: 'Create a sandbox',
      description:
        'Creates an isolated sandbox (a Linux environment to run commands and keep files in) and waits until ' +
        'it is RUNNING. Returns its status as JSON; use its "id" with the other tools. The sandbox is ' +
        'destroyed when its lease ends (renew_lease extends it) and when this MCP connection closes.',
      inputSchema: {
        ttlSeconds: create.ttlSeconds
          .optional()
          .describe(`Lease length in seconds (default ${DEFAULT_TTL_SECONDS}); the sandbox is destroyed when it ends`),
        driver: create.driver.describe('Hypervisor driver, e.g. "process" or "qemu" (default: the server\'s)'),
        template: create.template.describe("Template/image name (default: the driver's)"),
        maxLifetimeSeconds: create.maxLifetimeSeconds.describe('Hard cap on the total lifetime, renewals included'),
        labels: create.labels.describe('Labels (key → value) to find the sandbox by'),
        limits: create.limits.describe('Resource limits (memory, CPUs, …) within what the server allows'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
    guarded('create_sandbox', async (args) => {
      const create = async () =>
        client.createSandbox({
          ...args,
          ttlSeconds: args.ttlSeconds ?? DEFAULT_TTL_SECONDS,
          // Joining the connection's session is what destroys the sandbox when the client goes away.
          sessionId: await session.id(),
          wait: true,
        });
      try {
        return json(await create());
      } catch (err) {
        // The session ended under us (the API refuses to join it): once more, in a new one.
        const ended = err instanceof HourglassApiError && err.code === 'invalid_state' && sessionOf(err);
        if (!ended) throw err;
        session.lost(ended, err.message);
        return json(await create());
      }
    }),
  );

  server.registerTool(
    'list_sandboxes',
    {
      title: 'List sandboxes',
      description:
        'Lists the sandboxes this MCP connection created (its session\'s), or with "all": true every ' +
        'sandbox the token may see (up to 100). One line of JSON per sandbox: id, state, driver, expiresAt …',
      inputSchema: {
        all: z.boolean().optional().describe("true: every sandbox the token may see, not only this connection's"),
        state: z.array(z.enum(SANDBOX_STATES)).optional().describe('Only sandboxes in these states'),
      },
      annotations: { readOnlyHint: true },
    },
    guarded('list_sandboxes', async ({ all, state }) => {
      const page = await client.listSandboxes({
        sessionId: all ? undefined : await session.id(),
        state,
        limit: 100,
      });
      const items = page.items.map(summary);
      return json({ items, ...(page.nextCursor ? { more: 'more than 100 sandboxes; filter by state' } : {}) });
    }),
  );

  server.registerTool(
    'renew_lease',
    {
      title: 'Renew a sandbox lease',
      description:
        "Extends a sandbox's lease to end ttlSeconds from now (capped by its maxLifetimeSeconds). " +
        'Returns the new expiresAt and whether the cap cut it short.',
      inputSchema: {
        sandboxId,
        ttlSeconds: renewBody.shape.ttlSeconds.describe('The lease ends this many seconds from now'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true },
    },
    guarded('renew_lease', async ({ sandboxId: id, ttlSeconds }) => json(await client.renewLease(id, ttlSeconds))),
  );

  server.registerTool(
    'destroy_sandbox',
    {
      title: 'Destroy a sandbox',
      description:
        'Destroys a sandbox now: its processes stop and its files are deleted. Waits (up to ' +
        `${DESTROY_WAIT_MS / 1000} s) until it is DESTROYED and returns its final status.`,
      inputSchema: {
        sandboxId,
        reason: destroyBody.removeDefault().shape.reason.describe("Why (kept in the sandbox's record)"),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
    },
    guarded('destroy_sandbox', async ({ sandboxId: id, reason }) => {
      await client.destroySandbox(id, { reason: reason ?? 'destroyed by the agent over MCP' });
      return json(await untilDestroyed(client, id));
    }),
  );
}

/** The API only asks the workflow to destroy; the agent wants to know it happened. */
async function untilDestroyed(client: HourglassClient, id: string): Promise<SandboxStatus> {
  const deadline = Date.now() + DESTROY_WAIT_MS;
  for (;;) {
    const status = await client.getSandbox(id);
    if (status.state === 'DESTROYED' || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The session a refusal names (details.sessionId), if any. */
function sessionOf(err: HourglassApiError): string | undefined {
  const d = err.details as { sessionId?: unknown } | undefined;
  return typeof d?.sessionId === 'string' ? d.sessionId : undefined;
}

/** What a model needs to tell sandboxes apart, without the full record. */
function summary(s: SandboxStatus) {
  return {
    id: s.id,
    state: s.state,
    driver: s.driver,
    template: s.template,
    expiresAt: s.expiresAt,
    labels: Object.keys(s.labels ?? {}).length ? s.labels : undefined,
    destroyReason: s.destroyReason,
  };
}
