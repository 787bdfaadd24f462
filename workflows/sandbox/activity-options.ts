// How the sandbox workflow calls each kind of activity: timeouts, retries, the task queue that
// keeps it from waiting behind the others (workflows/task-queues.ts), and the summary the Temporal UI
// shows for the call (user metadata: words that change never break a replay).
import { ActivityCancellationType, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../../activities';
import { bootSummary, destroySummary } from '../summaries';
import { execQueue, provisionQueue, teardownQueue } from '../task-queues';

type Activities = ReturnType<typeof createActivities>;

/** Past a command's own timeout, the time its driver has to kill it and answer. */
export const EXEC_GRACE_SECONDS = 30;
/** A streamed or background command waiting this long for a free exec slot is refused (busy), not run late. */
export const EXEC_START_TIMEOUT_SECONDS = 60;

// Registry writes never block the lifecycle (PostgreSQL is a read model): retried forever, awaited
// only before the run closes. Rows are upserted by sequence number, so order of arrival is irrelevant.
export const registry = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '500ms', maximumInterval: '30s' },
});

// Transitions are written by a local activity in the workflow task that made them, batched: one
// marker event instead of a workflow task and three activity events each, and never queued behind
// creates. Longer backoffs (PostgreSQL down) sleep on a timer rather than hold the task open.
export const registryLocal = proxyLocalActivities<Activities>({
  startToCloseTimeout: '5s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
  localRetryThreshold: '5s',
});

/** Create, stop and start, on the provision queue. `summary`: what the Temporal UI shows for the call. */
export function provisioning(summary: string) {
  return proxyActivities<Activities>({
    summary,
    taskQueue: provisionQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '10m',
    heartbeatTimeout: '30s',
    // Destroy must not race a create that is still making the VM.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', maximumInterval: '20s', maximumAttempts: 5 },
  });
}

/** Waiting for the guest to answer, as long as the request allows. */
export function bootWait(readyTimeoutSeconds: number) {
  return proxyActivities<Activities>({
    summary: bootSummary(readyTimeoutSeconds),
    taskQueue: provisionQueue(workflowInfo().taskQueue),
    startToCloseTimeout: `${readyTimeoutSeconds + 30}s`,
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 3 },
  });
}

/**
 * Destroy, on the teardown queue, retried forever: a sandbox that was created must be destroyed.
 * Short, flat-ish backoff: a destroy is cheap to retry and every second of delay is a second past the lease.
 */
export function teardown(reason: string) {
  return proxyActivities<Activities>({
    summary: destroySummary(reason),
    taskQueue: teardownQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '5m',
    // A destroy lost with a crashed worker is retried after this; the activity heartbeats every second.
    heartbeatTimeout: '5s',
    retry: { initialInterval: '500ms', backoffCoefficient: 1.5, maximumInterval: '5s' },
  });
}

// A destroy runs first as a local activity inside the workflow task that decided it (a lease's
// timer, a destroy signal): no task-queue round trip, no second workflow task, so a lease ends on
// time even when expiries bunch up. A few quick tries; past them the teardown queue's activity
// takes over with its forever-retries (a slow driver, a worker without the driver, a crash).
export function teardownHere(reason: string) {
  return proxyLocalActivities<Activities>({
    summary: destroySummary(reason),
    startToCloseTimeout: '60s',
    retry: { initialInterval: '500ms', backoffCoefficient: 1.5, maximumInterval: '2s', maximumAttempts: 3 },
  });
}

/**
 * One command, at most once: re-running a command the agent did not ask for twice could do harm.
 * The activity heartbeats, so a command lost with its worker fails in seconds, not at its timeout.
 */
export function exec(timeoutSeconds: number, summary: string, killable = false) {
  if (!killable) {
    return proxyActivities<Activities>({
      summary,
      startToCloseTimeout: `${timeoutSeconds + EXEC_GRACE_SECONDS}s`,
      heartbeatTimeout: '10s',
      retry: { maximumAttempts: 1 },
    });
  }
  // Streamed and background commands, on their own queue. A kill reaches the worker through the
  // registry at once (activities/exec-kills.ts); this cancellation, delivered with a heartbeat, is
  // the fallback — a slow heartbeat keeps 1,000 background commands from costing ~600 RPCs a second.
  return proxyActivities<Activities>({
    summary,
    taskQueue: execQueue(workflowInfo().taskQueue),
    scheduleToStartTimeout: `${EXEC_START_TIMEOUT_SECONDS}s`,
    startToCloseTimeout: `${timeoutSeconds + EXEC_GRACE_SECONDS}s`,
    heartbeatTimeout: '20s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
  });
}

/** A file operation: moves up to 100 MiB through the registry; reads and writes are safe to repeat. */
export function files(summary: string) {
  return proxyActivities<Activities>({
    summary,
    startToCloseTimeout: '15m',
    heartbeatTimeout: '10s',
    retry: { initialInterval: '1s', maximumAttempts: 3 },
  });
}
