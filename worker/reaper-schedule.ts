// The reaper runs on a Temporal Schedule (pausable, triggerable, visible in the UI), created
// idempotently at start-up: an existing schedule is updated to the configured interval.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { reaperWorkflow } from '../workflows/reaper';
import { reaperScheduleSummary } from '../workflows/summaries';

export const REAPER_SCHEDULE_ID = 'hourglass-reaper';

export async function ensureReaperSchedule(
  client: Client,
  opts: { taskQueue: string; intervalSeconds: number; graceSeconds: number; scheduleId?: string },
): Promise<string> {
  // One schedule per task queue: each hypervisor host's worker reaps what it can see.
  const scheduleId =
    opts.scheduleId ??
    (opts.taskQueue === 'hourglass' ? REAPER_SCHEDULE_ID : `${REAPER_SCHEDULE_ID}-${opts.taskQueue}`);
  const spec: ScheduleOptions['spec'] = { intervals: [{ every: `${opts.intervalSeconds}s` }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: reaperWorkflow,
    workflowId: `reaper:${scheduleId}`,
    taskQueue: opts.taskQueue,
    args: [{ graceSeconds: opts.graceSeconds }] as [{ graceSeconds: number }],
    staticSummary: reaperScheduleSummary(opts.intervalSeconds, opts.graceSeconds),
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1m' },
      state: { note: 'Hourglass reaper: reconciles hypervisors, registry and Temporal; destroys leaks' },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
  }
  return scheduleId;
}
