// Calls to a sandbox's workflow. Once the workflow has closed (or is unknown), the registry row
// answers instead: a 409 naming the state it ended in, or a 404.
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { getSandbox } from '../../registry/sandboxes';
import { sandboxWorkflowId } from '../../workflows/ids';
import type { sandboxWorkflow } from '../../workflows/sandbox';
import { invalidStateMessage, type Operation } from '../../workflows/states';
import { ApiError, fromTemporal, notFound } from '../errors';
import type { SandboxContext } from './context';

export function sandboxHandle(client: Client, id: string): WorkflowHandle<typeof sandboxWorkflow> {
  return client.workflow.getHandle(sandboxWorkflowId(id));
}

/** Runs a workflow call; a closed (or unknown) workflow becomes a 409 naming the recorded state, or a 404. */
export async function callSandbox<T>(ctx: SandboxContext, id: string, op: Operation, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError || isCompletedError(err)) {
      const row = await getSandbox(ctx.pool, id);
      if (!row) throw notFound(`sandbox ${id}`);
      throw new ApiError(409, 'invalid_state', invalidStateMessage(op, row.state), { state: row.state });
    }
    throw fromTemporal(err) ?? err;
  }
}

export function isCompletedError(err: unknown): boolean {
  return err instanceof Error && /already completed|workflow execution already/i.test(err.message);
}
