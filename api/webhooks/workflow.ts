// Starting a webhook's `webhook:<id>` workflow: at create, and again at every worker start for each
// live webhook whose workflow is gone (terminated by an operator, lost with a namespace reset). The
// registry row carries the cursor a new run resumes from.
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type pg from 'pg';
import { listWebhooks, type Webhook } from '../../registry/webhooks';
import { webhookWorkflowId } from '../../workflows/ids';
import { webhookWorkflow } from '../../workflows/webhook';

export async function startWebhookWorkflow(client: Client, taskQueue: string, w: Webhook): Promise<void> {
  await client.workflow.start(webhookWorkflow, {
    workflowId: webhookWorkflowId(w.id),
    taskQueue,
    args: [{ webhookId: w.id, cursor: w.cursor }],
    // Running: leave it be. Closed by terminate/failure: start again. Completed (deleted): never.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    staticSummary: `webhook ${w.id} · ${w.owner}${w.allOwners ? ' (all owners)' : ''} · ${w.events.join(' ')}`,
  });
}

/** Every live webhook has a running workflow: for a worker's start-up. Returns how many were checked. */
export async function ensureWebhookWorkflows(
  client: Client,
  pool: pg.Pool,
  taskQueue: string,
  log: (msg: string) => void,
): Promise<number> {
  const live = await listWebhooks(pool, undefined, 100_000);
  for (const w of live) {
    await startWebhookWorkflow(client, taskQueue, w).catch((err: Error) =>
      log(`webhook ${w.id}: could not ensure its workflow (${err.message})`),
    );
  }
  return live.length;
}
