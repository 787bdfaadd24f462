// Runs the reaper on demand (POST /v1/sandboxes/prune): the workflow its schedule runs, under an
// id of its own, waited for so that the caller gets the report.
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { reaperWorkflow, type ReaperReport } from '../workflows/reaper';
import { pruneSummary } from '../workflows/summaries';
import { fromTemporal } from './errors';

export interface PruneRequest {
  dryRun: boolean;
  olderThanSeconds?: number;
}

export async function runReaperNow(
  client: Client,
  taskQueue: string,
  req: PruneRequest,
  graceSeconds: number,
): Promise<ReaperReport> {
  return client
    .withDeadline(Date.now() + 600_000, () =>
      client.workflow.execute(reaperWorkflow, {
        workflowId: `reaper:manual:${Date.now()}-${randomBytes(3).toString('hex')}`,
        taskQueue,
        args: [{ ...req, graceSeconds }],
        staticSummary: pruneSummary(req),
      }),
    )
    .catch((err) => {
      throw fromTemporal(err) ?? err;
    });
}
