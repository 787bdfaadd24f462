// How activities call a driver: the driver by name (a worker may lack it), permanent driver errors
// made non-retryable, heartbeats while the call runs, and cancellation handed to the driver.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { HypervisorError } from '../hypervisors/errors';
import type { HypervisorSet } from '../hypervisors/index';
import type { OpContext } from '../hypervisors/types';
import { Failure } from '../workflows/failures';

export function hypervisor(set: HypervisorSet, name: string) {
  if (!set.has(name)) {
    // Retryable on purpose: another worker (on the same task queue) may have this driver enabled.
    const message = `driver '${name}' is not enabled on this worker (enabled: ${set.names.join(', ')})`;
    throw ApplicationFailure.retryable(message, Failure.DriverNotEnabled);
  }
  return set.get(name);
}

/** Driver errors marked permanent (bad spec, not ready, not found) must not be retried. */
export async function permanentAware<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HypervisorError && err.permanent) {
      throw ApplicationFailure.nonRetryable(err.message, err.code);
    }
    throw err;
  }
}

/**
 * Heartbeats every second while fn runs, whatever the driver reports: the heartbeat then means
 * "this worker is alive", so a destroy lost with a crashed worker is retried after a short
 * heartbeat timeout instead of a long one sized for the slowest driver.
 */
export async function whileAlive<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  if (ctx.info.isLocal) return fn(); // a local activity lives inside its workflow task: no heartbeats
  const ticker = setInterval(() => ctx.heartbeat(), 1000);
  try {
    return await fn();
  } finally {
    clearInterval(ticker);
  }
}

/** Heartbeats carry progress; cancellation reaches the driver through the activity's signal. */
export function opContext(): OpContext {
  const ctx = Context.current();
  if (ctx.info.isLocal) return { signal: ctx.cancellationSignal, progress: () => {} };
  return { signal: ctx.cancellationSignal, progress: (detail) => ctx.heartbeat(detail) };
}
