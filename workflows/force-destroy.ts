// Force-destroy: the sandbox's own workflow has been terminated (or never ran its finally);
// destroy the VM directly and mark the row DESTROYED even when the VM is already gone.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { teardownQueue } from './task-queues';

type Activities = ReturnType<typeof createActivities>;

const OPTIONS = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
} as const;

export interface ForceDestroyInput {
  id: string;
  driver: string;
  /** Recorded on a row the sandbox's own workflow never wrote. */
  owner?: string;
  reason: string;
}

export async function forceDestroyWorkflow(input: ForceDestroyInput): Promise<{ existed: boolean }> {
  const { id, driver, owner, reason } = input;
  const { destroySandbox } = proxyActivities<Activities>({
    ...OPTIONS,
    taskQueue: teardownQueue(workflowInfo().taskQueue),
  });
  const { markDestroyed } = proxyActivities<Activities>(OPTIONS);
  const { existed } = await destroySandbox({ id, driver });
  await markDestroyed({ id, driver, owner, reason: existed ? reason : `${reason} (vm already gone)` });
  return { existed };
}
