// Counts the reaper's work around its activities (activities/reaper.ts): a run when its report is
// stored, a drift when its fix did something for real (not a dry run, not gone on a second look).
import type { FixDriftInput } from '../activities/reaper';
import type { StoredReport } from '../registry/reaper-runs';
import { driftsFixedTotal, reaperRunsTotal } from './definitions';

interface ReaperActivities {
  fixDrift(input: FixDriftInput): Promise<string | null>;
  storeReaperRun(report: StoredReport): Promise<number>;
}

export function countReaperWork<T extends ReaperActivities>(activities: T): T {
  return {
    ...activities,
    async fixDrift(input: FixDriftInput) {
      const action = await activities.fixDrift(input);
      if (action !== null && !input.dryRun) driftsFixedTotal.inc({ kind: input.drift.kind });
      return action;
    },
    async storeReaperRun(report: StoredReport) {
      const id = await activities.storeReaperRun(report);
      reaperRunsTotal.inc({ dry_run: String(report.dryRun) });
      return id;
    },
  };
}
