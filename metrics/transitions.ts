// Lifecycle timings read off the transitions a sandbox workflow records (activities/index.ts calls
// this once the registry has them). Both ends of each measure are workflow time (the server's clock
// for the workflow task), so worker clocks do not skew them. Only events the registry appended are
// observed, so a write run twice (a local activity retried after a lost task completion) counts once.
import type { TransitionEvent } from '../workflows/types';
import { createToRunningSeconds, leaseLatenessSeconds } from './definitions';

export function observeTransitions(events: readonly TransitionEvent[]): void {
  for (const event of events) {
    const driver = event.sandbox.driver;
    const at = Date.parse(event.at);
    if (event.to === 'RUNNING' && event.from === 'BOOTING') {
      createToRunningSeconds.observe({ driver }, seconds(at - Date.parse(event.sandbox.createdAt)));
    }
    // EXPIRED is recorded in the workflow task that found the lease over, and that same task schedules
    // the destroy (workflows/sandbox/run.ts expire → destroyVm): its `at` is when the destroy starts,
    // to within the task's own milliseconds. A lease the reaper must force-destroy shows instead in
    // hourglass_reaper_drifts_fixed_total{kind="overdue"}.
    if (event.to === 'EXPIRED' && event.sandbox.expiresAt) {
      leaseLatenessSeconds.observe({ driver }, seconds(at - Date.parse(event.sandbox.expiresAt)));
    }
  }
}

const seconds = (ms: number) => Math.max(0, ms) / 1000;
