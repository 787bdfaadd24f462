// The floor: a workflow that runs `activities` no-op activities one after another, the shortest
// possible workflow with as many activity round trips as a sandbox lifecycle.
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from './bare-activities';

const { noop } = proxyActivities<typeof activities>({ startToCloseTimeout: '30s' });

export async function bareWorkflow(activityCount: number): Promise<number> {
  for (let i = 0; i < activityCount; i++) await noop();
  return activityCount;
}
