// Ending sandboxes: ask the workflow to end the lease (its finally destroys the VM), or force it
// from any state, one sandbox or many at once.
import { WorkflowNotFoundError } from '@temporalio/client';
import { listSandboxes } from '../../registry/sandboxes';
import { forceDestroyWorkflow } from '../../workflows/force-destroy';
import { forceDestroyWorkflowId } from '../../workflows/ids';
import { EndReason } from '../../workflows/end-reasons';
import { destroySignal } from '../../workflows/messages';
import { SandboxDriver, SandboxEndReason, SandboxOwner } from '../../workflows/search-attributes';
import { ALLOWED_STATES, SANDBOX_STATES, invalidStateMessage, isAllowed } from '../../workflows/states';
import { forceDestroySummary } from '../../workflows/summaries';
import type { SandboxStatus } from '../../workflows/types';
import { ApiError, fromTemporal } from '../errors';
import type { Principal } from '../tokens';
import { authorize } from './access';
import type { SandboxContext } from './context';
import { get } from './read';
import { callSandbox, isCompletedError, sandboxHandle } from './workflow-call';

/** Asks the workflow to end the lease now; the destroy itself runs in the workflow's finally. */
export async function requestDestroy(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  reason: string | undefined,
  requestedBy: string,
): Promise<SandboxStatus> {
  const current = await get(ctx, p, id);
  if (current.state === 'DESTROYING') return current;
  if (!isAllowed('destroy', current.state)) {
    throw new ApiError(409, 'invalid_state', `${invalidStateMessage('destroy', current.state)} (or pass force: true)`, {
      state: current.state,
      validStates: ALLOWED_STATES.destroy,
      force: true,
    });
  }
  // Who asked is always recorded: a reason given by the caller only adds to it.
  const why = reason ? `${reason} (destroy requested by ${requestedBy})` : undefined;
  await callSandbox(ctx, id, 'destroy', () =>
    sandboxHandle(ctx.client, id).signal(destroySignal, { reason: why, requestedBy }),
  );
  return current;
}

/**
 * From any state: terminate the sandbox's workflow if it is open (its finally will not run),
 * then destroy the VM from a short workflow of its own and mark the row DESTROYED.
 */
export async function forceDestroy(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  reason: string | undefined,
  requestedBy: string,
) {
  const { driver, owner } = await authorize(ctx, p, id);
  // Who asked is always recorded: a reason given by the caller only adds to it.
  const why = `force destroy by ${requestedBy}${reason ? `: ${reason}` : ''}`;
  try {
    await sandboxHandle(ctx.client, id).terminate(why);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError) && !isCompletedError(err)) throw fromTemporal(err) ?? err;
  }
  const { existed } = await callSandbox(ctx, id, 'destroy', () =>
    ctx.client.withDeadline(Date.now() + 120_000, () =>
      ctx.client.workflow.execute(forceDestroyWorkflow, {
        workflowId: forceDestroyWorkflowId(id),
        taskQueue: ctx.opts.taskQueue,
        args: [{ id, driver, owner, reason: why }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: forceDestroySummary(id, driver, why),
        // The sandbox's own workflow was terminated and can record nothing more: this one carries
        // the end reason, so `SandboxEndReason="force destroyed"` lists it (its id names the sandbox).
        typedSearchAttributes: [
          { key: SandboxEndReason, value: EndReason.ForceDestroyed },
          { key: SandboxDriver, value: driver },
          { key: SandboxOwner, value: owner },
        ],
      }),
    ),
  );
  return { id, state: 'DESTROYED' as const, destroyReason: why, vmExisted: existed };
}

export interface BulkDestroyRequest {
  ids?: string[];
  label?: readonly [string, string];
  force: boolean;
  reason?: string;
}

/** Destroys many sandboxes; every id gets its own result, failures included. */
export async function bulkDestroy(ctx: SandboxContext, p: Principal, req: BulkDestroyRequest, requestedBy: string) {
  const ids = new Set(req.ids ?? []);
  if (req.label) {
    let cursor: string | undefined;
    do {
      const page = await listSandboxes(ctx.pool, {
        owner: p.role === 'admin' ? undefined : p.owner,
        labels: { [req.label[0]]: req.label[1] },
        state: SANDBOX_STATES.filter((st) => st !== 'DESTROYED'),
        limit: 500,
        cursor,
      });
      page.items.forEach((s) => ids.add(s.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
  const items = await Promise.all(
    [...ids].map(async (id) => {
      try {
        const result = req.force
          ? await forceDestroy(ctx, p, id, req.reason, requestedBy)
          : await requestDestroy(ctx, p, id, req.reason, requestedBy);
        return { id, ok: true as const, state: result.state };
      } catch (err) {
        const e =
          err instanceof ApiError ? err : (fromTemporal(err) ?? new ApiError(500, 'internal', (err as Error).message));
        return { id, ok: false as const, error: { code: e.code, message: e.message } };
      }
    }),
  );
  return { count: items.length, failed: items.filter((i) => !i.ok).length, items };
}
