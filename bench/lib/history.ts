// A workflow's history as Temporal stores it: events of every run (following continue-as-new
// back to the first), each with its type and serialized size.
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { sleep } from './stack';

// @temporalio/proto is CommonJS: take the default export.
const { HistoryEvent } = proto.temporal.api.history.v1;
const { EventType } = proto.temporal.api.enums.v1;

export interface Event {
  type: string;
  bytes: number;
}

/** Every event of the workflow, oldest run first. */
export async function historyOf(client: Client, workflowId: string): Promise<{ events: Event[]; runs: number }> {
  const runs: Event[][] = [];
  let runId: string | undefined;
  for (;;) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = history.events ?? [];
    runs.unshift(
      events.map((e) => ({
        type: typeName(e.eventType as number),
        bytes: HistoryEvent.encode(e).finish().length,
      })),
    );
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    if (!runId) break;
  }
  return { events: runs.flat(), runs: runs.length };
}

/** EVENT_TYPE_WORKFLOW_TASK_COMPLETED → WorkflowTaskCompleted */
function typeName(type: number): string {
  const name = EventType[type] ?? `EventType${type}`;
  return name
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

/**
 * Waits until the workflow has nothing in flight (no workflow task, no activity) and its history
 * stopped growing, so the events a step caused are all written before the next step.
 */
export async function quiesce(client: Client, workflowId: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    const d = await client.workflow.getHandle(workflowId).describe();
    const busy = (d.raw.pendingActivities?.length ?? 0) > 0 || !!d.raw.pendingWorkflowTask;
    const length = d.historyLength;
    if (!busy && length === last) return;
    last = busy ? -1 : length;
    await sleep(500);
  }
  throw new Error(`workflow ${workflowId} still busy after ${timeoutMs} ms`);
}
