// The reaper: reconciles hypervisor inventory, registry rows and Temporal visibility, and fixes
// every drift. Runs on a Temporal Schedule (overlap SKIP) and on demand (prune).
import { patched, proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { planReconciliation, type Drift, type DriftKind } from './drift';

type Activities = ReturnType<typeof createActivities>;

const { takeInventory, storeReaperRun, pruneDataPlane } = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});
// Inventory and plan in one activity (only the drifts come back): heartbeats while it reads.
const { planDrifts } = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});
const { fixDrift } = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

export interface ReaperInput {
  dryRun?: boolean;
  olderThanSeconds?: number;
  graceSeconds?: number;
}

export interface ReaperItem {
  id: string;
  drift: DriftKind;
  action: string;
}

export interface ReaperReport {
  runId?: number;
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  count: number;
  counts: Partial<Record<DriftKind, number>>;
  items: ReaperItem[];
  /** Drifts found beyond what one run fixes (MAX_DRIFTS_PER_RUN): the next run takes them. */
  deferred?: number;
}

export async function reaperWorkflow(input: ReaperInput = {}): Promise<ReaperReport> {
  const dryRun = input.dryRun ?? false;
  const startedAt = new Date().toISOString();
  const graceSeconds = input.graceSeconds ?? 30;
  const plan = { graceSeconds, olderThanSeconds: input.olderThanSeconds };
  let drifts: Drift[];
  let deferred = 0;
  // patched: runs that took the whole inventory through their history replay that way.
  if (patched('reaper-plans-in-activity')) ({ drifts, deferred } = await planDrifts(plan));
  else drifts = planReconciliation(await takeInventory(), plan);

  const items: ReaperItem[] = [];
  // A few at a time: enough to clear a backlog, not enough to stampede a hypervisor.
  for (let i = 0; i < drifts.length; i += 8) {
    const batch = drifts.slice(i, i + 8);
    // One drift that keeps failing must not stop the others (nor the report): it is retried next run.
    const results = await Promise.allSettled(batch.map((d) => fixDrift({ drift: d, dryRun, graceSeconds })));
    batch.forEach((d, j) => {
      const r = results[j]!;
      const action = r.status === 'fulfilled' ? r.value : `failed: ${failureMessage(r.reason)}`;
      if (action) items.push({ id: d.id, drift: d.kind, action });
    });
  }
  const counts: Partial<Record<DriftKind, number>> = {};
  for (const item of items) counts[item.drift] = (counts[item.drift] ?? 0) + 1;
  const report: ReaperReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    dryRun,
    count: items.length,
    counts,
    items,
    ...(deferred ? { deferred } : {}),
  };
  report.runId = await storeReaperRun(report);
  // Output of long-destroyed sandboxes and transfers a crash left behind (patched: runs from before replay without).
  if (!dryRun && patched('reaper-prunes-data-plane')) await pruneDataPlane();
  return report;
}

/** The activity failure's cause (the driver's words), else its own message. */
function failureMessage(reason: unknown): string {
  if (!(reason instanceof Error)) return String(reason);
  return (reason.cause as Error | undefined)?.message ?? reason.message;
}
