// One subscription's deliveries (workflow id `webhook:<id>`): wait for the next matching events
// after the cursor, deliver each in order — Temporal retries an attempt with exponential backoff
// until it is delivered or the retry window (HOURGLASS_WEBHOOK_RETRY_FOR_SECONDS) closes — then
// move the cursor past it. The cursor lives in this workflow's history, so a worker crash resumes
// exactly where it was. In order on purpose: a receiver sees a sandbox's events in the order they
// happened; the price is head-of-line blocking (a failing receiver holds later events back until
// the failing one expires). Ends when the webhook is deleted (cancelled, or found deleted).
import {
  ActivityCancellationType,
  ActivityFailure,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import type { FeedEvent } from '../registry/event-feed';
import { webhookQueue, webhookWaitQueue } from './task-queues';

type Activities = ReturnType<typeof createActivities>;

export interface WebhookInput {
  webhookId: string;
  /** The last event id handled (a decimal string): events after it are delivered. */
  cursor: string;
  /** Events handled per run before continuing as new (default 500; tests make it small). */
  eventsPerRun?: number;
}

/** Events handled per run before continuing as new (the history stays small). */
const EVENTS_PER_RUN = 500;
/** Quiet waits add ~6 history events each: roll over long before the server's limits. */
const MAX_HISTORY_EVENTS = 5000;

// Waits on their own queue: a thousand quiet subscriptions never hold a slot a delivery needs.
const waiting = () =>
  proxyActivities<Activities>({
    taskQueue: webhookWaitQueue(workflowInfo().taskQueue),
    summary: 'wait for events',
    // The wait returns within ~60 s; heartbeats every 10 s show it is alive (and carry a delete's cancel).
    startToCloseTimeout: '2m',
    heartbeatTimeout: '30s',
    // A delete ends the workflow at once; the wait hears of it at its next heartbeat (up to ~24 s).
    cancellationType: ActivityCancellationType.TRY_CANCEL,
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });

const settling = () =>
  proxyActivities<Activities>({
    taskQueue: webhookQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '10s',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });

/** One delivery: attempts 1 s, 2 s, 4 s … apart (at most 10 min), for `retryForSeconds` in all. */
const delivering = (retryForSeconds: number, event: FeedEvent) =>
  proxyActivities<Activities>({
    taskQueue: webhookQueue(workflowInfo().taskQueue),
    summary: `deliver ${event.type} of ${event.sandboxId} (event ${event.id})`,
    // Each POST has 10 s; the rest is registry writes.
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: `${retryForSeconds}s`,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10m' },
  });

export async function webhookWorkflow(input: WebhookInput): Promise<{ deleted: true }> {
  let cursor = input.cursor;
  let handled = 0;
  const eventsPerRun = input.eventsPerRun ?? EVENTS_PER_RUN;
  for (;;) {
    if (
      handled >= eventsPerRun ||
      workflowInfo().continueAsNewSuggested ||
      workflowInfo().historyLength > MAX_HISTORY_EVENTS
    ) {
      // Nothing to clean up here (no try/finally), so continue-as-new runs no cleanup by accident.
      await condition(allHandlersFinished);
      return continueAsNew<typeof webhookWorkflow>({ ...input, cursor });
    }
    const batch = await waiting().waitForWebhookEvents({ webhookId: input.webhookId, after: cursor });
    if (batch.deleted) return { deleted: true };
    for (const event of batch.events) {
      await deliver(input.webhookId, event, batch.retryForSeconds);
      cursor = event.id;
      handled += 1;
    }
    cursor = batch.through;
  }
}

/** Delivers one event, or records why it never will be; a cancellation (DELETE) goes through. */
async function deliver(webhookId: string, event: FeedEvent, retryForSeconds: number): Promise<void> {
  try {
    await delivering(retryForSeconds, event).deliverWebhook({ webhookId, event });
  } catch (err) {
    if (isCancellation(err)) throw err;
    // The retry window closed: the server reports the last attempt's failure with retry state TIMEOUT
    // (or a timeout as the cause, when the window closed while an attempt was running).
    const expired =
      err instanceof ActivityFailure && (err.retryState === 'TIMEOUT' || err.cause instanceof TimeoutFailure);
    const last = err instanceof ActivityFailure && err.cause ? err.cause.message : String((err as Error)?.message);
    const reason = expired ? `not delivered within ${retryForSeconds} s (last: ${last})` : last;
    await settling().settleWebhookDelivery({ webhookId, event, status: expired ? 'expired' : 'failed', reason });
  }
}
