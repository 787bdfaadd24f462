// What a running sandbox is asked to do: exec, renew its lease, stop, start. Each is an update
// (or, for an async renewal, a signal) on the sandbox's workflow.
import { DEFAULT_EXEC_TIMEOUT_SECONDS } from '../../hypervisors/guest/contract';
import { execUpdate, renewLeaseSignal, renewLeaseUpdate, startUpdate, stopUpdate } from '../../workflows/messages';
import { invalidStateMessage, isAllowed, type Operation } from '../../workflows/states';
import type { ExecInput, ExecOutput, RenewLeaseResult, SandboxStatus } from '../../workflows/types';
import { ApiError } from '../errors';
import type { Principal } from '../tokens';
import { authorize } from './access';
import type { SandboxContext } from './context';
import { get } from './read';
import { callSandbox, sandboxHandle } from './workflow-call';

export async function exec(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  input: ExecInput,
  updateId?: string,
): Promise<ExecOutput> {
  await authorize(ctx, p, id);
  const deadline = Date.now() + ((input.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS) + 60) * 1000;
  // Update ids are per run: a key names one exec, never also a renewal.
  const options = { args: [input] as [ExecInput], updateId: updateId && `exec:${updateId}` };
  return callSandbox(ctx, id, 'exec', () =>
    ctx.client.withDeadline(deadline, () => sandboxHandle(ctx.client, id).executeUpdate(execUpdate, options)),
  );
}

export async function renew(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  ttlSeconds: number,
  updateId?: string,
): Promise<RenewLeaseResult> {
  await authorize(ctx, p, id);
  const options = { args: [{ ttlSeconds }] as [{ ttlSeconds: number }], updateId: updateId && `renew:${updateId}` };
  return callSandbox(ctx, id, 'renewLease', () =>
    ctx.client.withDeadline(Date.now() + 30_000, () =>
      sandboxHandle(ctx.client, id).executeUpdate(renewLeaseUpdate, options),
    ),
  );
}

/** Renewal by signal: accepted even with no worker running; invalid renewals are ignored by the workflow. */
export async function renewBySignal(ctx: SandboxContext, p: Principal, id: string, ttlSeconds: number): Promise<void> {
  await requireState(ctx, p, id, 'renewLease');
  await callSandbox(ctx, id, 'renewLease', () =>
    sandboxHandle(ctx.client, id).signal(renewLeaseSignal, { ttlSeconds }),
  );
}

export async function stop(ctx: SandboxContext, p: Principal, id: string): Promise<SandboxStatus> {
  await authorize(ctx, p, id);
  return callSandbox(ctx, id, 'stop', () =>
    ctx.client.withDeadline(Date.now() + 120_000, () => sandboxHandle(ctx.client, id).executeUpdate(stopUpdate)),
  );
}

export async function start(ctx: SandboxContext, p: Principal, id: string): Promise<SandboxStatus> {
  await authorize(ctx, p, id);
  return callSandbox(ctx, id, 'start', () =>
    ctx.client.withDeadline(Date.now() + 120_000, () => sandboxHandle(ctx.client, id).executeUpdate(startUpdate)),
  );
}

async function requireState(ctx: SandboxContext, p: Principal, id: string, op: Operation): Promise<void> {
  const current = await get(ctx, p, id);
  if (!isAllowed(op, current.state)) {
    throw new ApiError(409, 'invalid_state', invalidStateMessage(op, current.state), { state: current.state });
  }
}
