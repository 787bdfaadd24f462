// Where a lease end's lateness comes from, read from the workflow's own history: the timer that
// ended it was set late (it starts when the workflow task that set it completes, not when the
// lease's clock started), fired late (the server's timer queue), or its workflow task reached
// the worker late (task queue, busy worker). EXPIRED is written with that task's start time.
import type { Client } from '@temporalio/client';
import { EventType, eventMs as ms, sandboxHistory, toMs, type HistoryEvent } from './history-events';

export interface LeaseEndParts {
  /** When the timer was due (TimerStarted + its duration) − expiresAt. */
  timerSetLateMs: number;
  /** TimerFired − when it was due. */
  timerFiredLateMs: number;
  /** The next WorkflowTaskStarted − TimerFired. */
  taskLateMs: number;
}

/** The parts of one sandbox's lease-end lateness, or undefined when no timer ended it (destroyed otherwise). */
export async function leaseEndParts(
  client: Client,
  sandboxId: string,
  expiresAt: number,
): Promise<LeaseEndParts | undefined> {
  const events = await sandboxHistory(client, sandboxId);
  const started = new Map<string, HistoryEvent>();
  let fired: HistoryEvent | undefined;
  let taskStarted: HistoryEvent | undefined;
  for (const e of events) {
    if (e.eventType === EventType.EVENT_TYPE_TIMER_STARTED) started.set(e.timerStartedEventAttributes!.timerId!, e);
    // The lease's last timer: the first one to fire at or after expiresAt.
    if (!fired && e.eventType === EventType.EVENT_TYPE_TIMER_FIRED && ms(e) >= expiresAt) {
      fired = e;
    } else if (fired && e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
      taskStarted = e;
      break;
    }
  }
  const set = fired && started.get(fired.timerFiredEventAttributes!.timerId!);
  if (!fired || !set || !taskStarted) return undefined;
  const due = ms(set) + toMs(set.timerStartedEventAttributes!.startToFireTimeout);
  return {
    timerSetLateMs: due - expiresAt,
    timerFiredLateMs: ms(fired) - due,
    taskLateMs: ms(taskStarted) - ms(fired),
  };
}
