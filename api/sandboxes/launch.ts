// Starts a sandbox's workflow for a prepared request and, unless told not to wait, waits (one
// update-with-start) until the sandbox is RUNNING or has failed.
import { WithStartWorkflowOperation } from '@temporalio/client';
import { sandboxWorkflowId } from '../../workflows/ids';
import { awaitReadyUpdate } from '../../workflows/messages';
import { sandboxWorkflow } from '../../workflows/sandbox';
import {
  SandboxDriver,
  SandboxExpiresAt,
  SandboxOwner,
  SandboxSession,
  SandboxState,
} from '../../workflows/search-attributes';
import { sandboxDetails, sandboxSummary } from '../../workflows/summaries';
import type { SandboxRequest, SandboxStatus } from '../../workflows/types';
import { fromTemporal } from '../errors';
import type { SandboxContext } from './context';
import { describe } from './read';

export async function launch(
  ctx: SandboxContext,
  request: SandboxRequest,
  opts: { requestHash?: string; wait: boolean },
): Promise<SandboxStatus> {
  const maxExpiresAt = new Date(Date.now() + request.maxLifetimeSeconds * 1000);
  const startOptions = {
    workflowId: sandboxWorkflowId(request.id),
    taskQueue: ctx.opts.taskQueue,
    args: [{ request }] as [{ request: SandboxRequest }],
    // With an Idempotency-Key, FAIL lets a concurrent duplicate fall back to the replay check
    // (same body → same sandbox, another body → 422); REJECT_DUPLICATE: a destroyed id never returns.
    workflowIdConflictPolicy: opts.requestHash ? ('FAIL' as const) : ('USE_EXISTING' as const),
    workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
    memo: {
      requestHash: opts.requestHash ?? null,
      // Enough to describe the sandbox before any worker has run it.
      labels: request.labels,
      maxExpiresAt: maxExpiresAt.toISOString(),
    },
    staticSummary: sandboxSummary(request),
    staticDetails: sandboxDetails(request),
    typedSearchAttributes: [
      { key: SandboxState, value: 'REQUESTED' },
      { key: SandboxDriver, value: request.driver },
      { key: SandboxOwner, value: request.owner },
      // Until RUNNING, the latest it may live: the reaper catches a create that never ends.
      { key: SandboxExpiresAt, value: maxExpiresAt },
      ...(request.sessionId ? [{ key: SandboxSession, value: request.sessionId }] : []),
    ],
  };
  try {
    if (!opts.wait) {
      await ctx.client.workflow.start(sandboxWorkflow, startOptions);
      return requestedStatus(request);
    }
    const startWorkflowOperation = new WithStartWorkflowOperation(sandboxWorkflow, startOptions);
    const waitMs = (request.readyTimeoutSeconds + 60) * 1000;
    try {
      return await ctx.client.withDeadline(Date.now() + waitMs, () =>
        ctx.client.workflow.executeUpdateWithStart(awaitReadyUpdate, { startWorkflowOperation }),
      );
    } catch (err) {
      if (fromTemporal(err)) throw err;
      // The deadline passed (e.g. no worker yet): the sandbox exists; report where it is.
      await startWorkflowOperation.workflowHandle();
      return describe(ctx, request.id);
    }
  } catch (err) {
    throw fromTemporal(err) ?? err;
  }
}

/** What a just-started sandbox looks like before its workflow has run (no worker needed). */
function requestedStatus(r: SandboxRequest): SandboxStatus {
  const now = Date.now();
  return {
    id: r.id,
    owner: r.owner,
    state: 'REQUESTED',
    driver: r.driver,
    template: r.template,
    labels: r.labels,
    sessionId: r.sessionId,
    createdAt: new Date(now).toISOString(),
    maxExpiresAt: new Date(now + r.maxLifetimeSeconds * 1000).toISOString(),
    job: r.job ? { state: 'QUEUED', steps: [] } : undefined,
  };
}
