// The lease loop: the run sleeps on its lease until it ends, a destroy is asked for, or history
// asks for a rollover. Handlers bump `wakeups` so the loop looks again.
import { CancellationScope, allHandlersFinished, condition, sleep } from '@temporalio/workflow';
import { leaseTimerSummary } from '../summaries';
import { nearHistoryLimit, rolloverDue } from './rollover';
import type { SandboxRun } from './run';

export async function holdLease(run: SandboxRun): Promise<'ended' | 'rollover'> {
  const untilOrLeaseEnd = leaseTimer(run);
  for (;;) {
    if (run.destroyReason) {
      if (run.job?.state === 'RUNNING') run.job.state = 'FAILED';
      return 'ended';
    }
    const msLeft = run.lease.msLeft(Date.now());
    if (msLeft <= 0) {
      run.expire();
      return 'ended';
    }
    if (rolloverDue(run)) {
      // Roll over once in-flight execs and writes are done; take new work meanwhile unless history
      // nears its hard limit. Inside the lease loop, so a destroy request or the lease end still wins.
      run.draining = nearHistoryLimit();
      const drained = () => allHandlersFinished() && run.publish.idle;
      const drainingNow = () => !run.draining && nearHistoryLimit();
      await untilOrLeaseEnd(() => drained() || Boolean(run.destroyReason) || drainingNow(), msLeft);
      if (drained() && !run.destroyReason) return 'rollover';
      run.draining = false;
      continue;
    }
    const seen = run.wakeups;
    await untilOrLeaseEnd(() => run.wakeups !== seen, msLeft);
  }
}

/**
 * Waits for `done` or the lease's end. One durable timer per lease period: a renewal only moves
 * the expiry later, so the timer already set wakes the loop (which sets the next one) and a
 * renewal adds no timer events. Runs from before lean-history-v1 restart the timer on every wake-up.
 */
function leaseTimer(run: SandboxRun): (done: () => boolean, msLeft: number) => Promise<void> {
  let timerSet = false;
  return async (done, msLeft) => {
    // The summary names the lease's end as it was when the timer was set (a renewal shows in the next one).
    const timer = { summary: leaseTimerSummary(run.lease.expiresAt) };
    if (!run.lean) {
      await condition(done, msLeft, timer);
      return;
    }
    if (!timerSet) {
      timerSet = true;
      void CancellationScope.nonCancellable(() => sleep(msLeft, timer)).then(
        () => {
          timerSet = false;
          run.wakeups += 1;
        },
        () => {},
      );
    }
    const seen = run.wakeups;
    await condition(() => done() || run.wakeups !== seen);
  };
}
