// Where a streamed exec's time to first byte goes, read from its sandbox workflow's history: the
// update reached the workflow (accepted), its activity was scheduled on the exec queue, a worker
// took it (started); what is left until the first stdout event is the driver starting the command
// and the output's way back (recorder → PostgreSQL → NOTIFY → SSE).
import type { Client } from '@temporalio/client';
import { EventType, eventMs as ms, sandboxHistory, type HistoryEvent } from './history-events';

export interface StreamStages {
  /** POST → the WorkflowTaskScheduled that carried the update (API, the update RPC, the server). */
  taskScheduledMs: number;
  /** → its WorkflowTaskStarted: waiting for the worker to poll it. */
  taskStartedMs: number;
  /** → WorkflowExecutionUpdateAccepted: the worker running the task (validator, handler start). */
  acceptedMs: number;
  /** Accepted → ActivityTaskScheduled (on the exec queue). */
  scheduledMs: number;
  /** Scheduled → ActivityTaskStarted: waiting for a worker slot and poller. */
  pickedUpMs: number;
  /** Started → the first stdout event at the client. */
  toFirstByteMs: number;
}

/**
 * The stages of the first streamed exec posted at `postedAt` (epoch ms) in this sandbox, or
 * undefined when its history lacks one (the payloads may be encrypted: matched by time and queue).
 */
export async function streamStages(
  client: Client,
  sandboxId: string,
  postedAt: number,
  firstByteAt: number,
  execQueueSuffix = '-execs',
): Promise<StreamStages | undefined> {
  const events = await sandboxHistory(client, sandboxId);
  let accepted: HistoryEvent | undefined;
  let taskScheduled: HistoryEvent | undefined;
  let taskStarted: HistoryEvent | undefined;
  let scheduled: HistoryEvent | undefined;
  let startedAt: number | undefined;
  for (const e of events) {
    if (ms(e) < postedAt - 5) continue; // the clocks are the same machine's; a few ms of rounding
    // The last workflow task before the acceptance is the one that took the update.
    if (!accepted && e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) taskScheduled = e;
    if (!accepted && e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) taskStarted = e;
    if (!accepted && e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) accepted = e;
    const queue = e.activityTaskScheduledEventAttributes?.taskQueue?.name;
    if (accepted && !scheduled && queue?.endsWith(execQueueSuffix)) scheduled = e;
    const started = e.activityTaskStartedEventAttributes;
    if (scheduled && started && Number(started.scheduledEventId) === Number(scheduled.eventId)) startedAt = ms(e);
  }
  // A running activity's start is not in history yet (it is written with its end): none here.
  if (!accepted || !taskScheduled || !taskStarted || !scheduled || startedAt === undefined) return undefined;
  return {
    taskScheduledMs: ms(taskScheduled) - postedAt,
    taskStartedMs: ms(taskStarted) - ms(taskScheduled),
    acceptedMs: ms(accepted) - ms(taskStarted),
    scheduledMs: ms(scheduled) - ms(accepted),
    pickedUpMs: startedAt - ms(scheduled),
    toFirstByteMs: firstByteAt - startedAt,
  };
}
