// Starting a webhook's `webhook:<id>` workflow: at create, and again after every worker start for
// each live webhook whose workflow is gone (terminated by an operator, lost with a namespace reset).
// The registry row carries the cursor a new run resumes from.
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type pg from 'pg';
import { listLiveWebhooksPage, type Webhook } from '../../registry/webhooks';
import { webhookWorkflowId } from '../../workflows/ids';
import { webhookSummary } from '../../workflows/summaries';
import { webhookWorkflow } from '../../workflows/webhook';

export async function startWebhookWorkflow(client: Client, taskQueue: string, w: Webhook): Promise<void> {
  await client.workflow.start(webhookWorkflow, {
    workflowId: webhookWorkflowId(w.id),
    taskQueue,
    args: [{ webhookId: w.id, cursor: w.cursor }],
    // Running: leave it be. Closed by terminate/failure: start again. Completed (deleted): never.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    staticSummary: webhookSummary(w),
  });
}

export interface EnsureResult {
  checked: number;
  failed: number;
  /** The first failure's message, for the one log line. */
  firstError?: string;
}

/**
 * Every live webhook has a running workflow: for after a worker's start (in the background — the
 * service does not wait for it). Paged by id, `concurrency` starts at once; each start is a no-op
 * for a running workflow. A failed start is counted (its first error kept), not thrown.
 */
export async function ensureWebhookWorkflows(
  client: Client,
  pool: pg.Pool,
  taskQueue: string,
  opts: { concurrency?: number; pageSize?: number } = {},
): Promise<EnsureResult> {
  const { concurrency = 8, pageSize = 200 } = opts;
  const result: EnsureResult = { checked: 0, failed: 0 };
  let after = '';
  for (;;) {
    const page = await listLiveWebhooksPage(pool, after, pageSize);
    if (page.length === 0) break;
    let next = 0;
    const lane = async () => {
      while (next < page.length) {
        const w = page[next++]!;
        try {
          await startWebhookWorkflow(client, taskQueue, w);
        } catch (err) {
          result.failed += 1;
          result.firstError ??= `webhook ${w.id}: ${(err as Error).message}`;
        }
        result.checked += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, page.length) }, lane));
    after = page[page.length - 1]!.id;
  }
  return result;
}
