// A session owns sandboxes ("leave no trace"): when it is ended or its heartbeat lapses, every
// sandbox in it is told to destroy itself. Sandboxes are not child workflows on purpose: a
// parent's close policy would also fire on the session's continue-as-new.
import {
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  destroySignal,
  endSessionSignal,
  getSessionStatus,
  sandboxJoinedSignal,
  sessionHeartbeatSignal,
  type SessionStatus,
} from './messages';
import { sandboxWorkflowId } from './ids';
import { heartbeatTimerSummary } from './summaries';

export interface SessionInput {
  id: string;
  /** Owner of the token that created it (also the SandboxOwner search attribute). */
  owner?: string;
  heartbeatTimeoutSeconds: number;
  carried?: { sandboxes: string[]; lastBeat: number };
}

const MAX_HISTORY_EVENTS = 10_000;

export async function sessionWorkflow(input: SessionInput): Promise<SessionStatus> {
  const sandboxes = new Set(input.carried?.sandboxes ?? []);
  let lastBeat = input.carried?.lastBeat ?? Date.now();
  let endReason: string | undefined;
  let wakeups = 0;
  const deadline = () => lastBeat + input.heartbeatTimeoutSeconds * 1000;
  const status = (): SessionStatus => ({
    id: input.id,
    owner: input.owner,
    state: endReason ? 'ENDED' : 'ACTIVE',
    heartbeatTimeoutSeconds: input.heartbeatTimeoutSeconds,
    deadline: new Date(deadline()).toISOString(),
    sandboxes: [...sandboxes],
    endReason,
  });

  setHandler(getSessionStatus, status);
  setHandler(sessionHeartbeatSignal, () => {
    lastBeat = Date.now();
    wakeups += 1;
  });
  // Signals may come from the Temporal UI or CLI with no input at all: never destructure blindly.
  setHandler(endSessionSignal, (input) => {
    endReason ??= input?.reason ?? 'session ended by request';
    wakeups += 1;
  });
  setHandler(sandboxJoinedSignal, (input) => {
    const sandboxId = input?.sandboxId;
    if (typeof sandboxId !== 'string') return log.warn('sandboxJoined signal without a sandboxId ignored');
    sandboxes.add(sandboxId);
    // A sandbox that joins after the end is destroyed right away.
    if (endReason) void destroySandbox(sandboxId);
  });

  let rollover = false;
  let cancelled: unknown;
  try {
    for (;;) {
      if (endReason) break;
      const msLeft = deadline() - Date.now();
      if (msLeft <= 0) {
        endReason = 'heartbeat lapsed';
        break;
      }
      if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS) {
        rollover = true;
        break;
      }
      const seen = wakeups;
      await condition(() => wakeups !== seen, msLeft, { summary: heartbeatTimerSummary(deadline()) });
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelled = err;
    endReason = 'session cancelled';
  } finally {
    if (!rollover) await CancellationScope.nonCancellable(() => Promise.all([...sandboxes].map(destroySandbox)));
  }
  if (cancelled) throw cancelled;
  if (rollover) {
    await condition(allHandlersFinished);
    return continueAsNew<typeof sessionWorkflow>({ ...input, carried: { sandboxes: [...sandboxes], lastBeat } });
  }
  return status();
}

async function destroySandbox(sandboxId: string): Promise<void> {
  try {
    await getExternalWorkflowHandle(sandboxWorkflowId(sandboxId)).signal(destroySignal, { reason: 'session ended' });
  } catch {
    // Already closed: nothing left to destroy (and the reaper checks anyway).
  }
}
