// A sandbox workflow's history events and their times, for benches that split a latency by them.
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { sandboxWorkflowId } from '../../workflows/ids';

export const { EventType } = proto.temporal.api.enums.v1;
export type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** Milliseconds of a protobuf Timestamp or Duration (the same shape). */
export const toMs = (t: proto.google.protobuf.IDuration | null | undefined) =>
  Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);

/** When the event was written, epoch ms. */
export const eventMs = (e: HistoryEvent) => toMs(e.eventTime);

export async function sandboxHistory(client: Client, sandboxId: string): Promise<HistoryEvent[]> {
  return (await client.workflow.getHandle(sandboxWorkflowId(sandboxId)).fetchHistory()).events ?? [];
}
