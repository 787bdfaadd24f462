// Creating a sandbox: check the request, replay an Idempotency-Key already used, admit it, launch it.
import { randomBytes } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { JobSpec, SandboxRequest, SandboxStatus } from '../../workflows/types';
import { ApiError } from '../errors';
import { resolveLimits } from '../limits';
import type { CreateSandboxBody } from '../schemas';
import type { Principal } from '../tokens';
import { requireCapacity, requireOpenSession, requireQuota } from './admission';
import type { SandboxContext } from './context';
import { replay, requestHash, sandboxIdForKey } from './idempotency';
import { launch } from './launch';

/** Starts the sandbox workflow and (by default) waits until the sandbox is RUNNING or has failed. */
export async function createSandbox(
  ctx: SandboxContext,
  p: Principal,
  body: CreateSandboxBody & { job?: JobSpec },
  { idempotencyKey }: { idempotencyKey?: string } = {},
): Promise<{ created: boolean; sandbox: SandboxStatus }> {
  const { opts } = ctx;
  const driver = body.driver ?? opts.defaultDriver;
  if (!opts.drivers.includes(driver)) {
    const enabled = opts.drivers.join(', ');
    throw new ApiError(400, 'invalid_argument', `driver: '${driver}' is not enabled; enabled drivers: ${enabled}`);
  }
  const limits = resolveLimits(opts.limits, body.template, body.limits);
  const hash = requestHash({ ...body, driver });
  // Keys are per owner: the same key from another owner names another sandbox.
  const id = idempotencyKey ? sandboxIdForKey(p.owner, idempotencyKey) : newSandboxId();
  if (idempotencyKey) {
    const replayed = await replay(ctx, p, id, hash);
    if (replayed) return { created: false, sandbox: replayed };
  }
  if (body.sessionId) await requireOpenSession(ctx, p, body.sessionId);
  await requireQuota(ctx, p);
  requireCapacity(ctx);
  const maxLifetimeSeconds = body.maxLifetimeSeconds ?? opts.defaultMaxLifetimeSeconds;
  if (body.ttlSeconds > maxLifetimeSeconds) {
    const message = `ttlSeconds: ${body.ttlSeconds} exceeds maxLifetimeSeconds ${maxLifetimeSeconds}`;
    throw new ApiError(400, 'invalid_argument', message);
  }
  const request: SandboxRequest = {
    id,
    driver,
    template: body.template,
    ttlSeconds: body.ttlSeconds,
    maxLifetimeSeconds,
    labels: body.labels,
    sessionId: body.sessionId,
    owner: p.owner,
    limits,
    readyTimeoutSeconds: body.readyTimeoutSeconds ?? opts.readyTimeoutSeconds,
    job: body.job,
  };
  ctx.pending.creates += 1;
  try {
    const sandbox = await launch(ctx, request, { requestHash: idempotencyKey ? hash : undefined, wait: body.wait });
    return { created: true, sandbox };
  } catch (err) {
    // A concurrent create with the same key started it first: answer as a replay would.
    const replayed = idempotencyKey && isAlreadyStarted(err) ? await replay(ctx, p, id, hash) : null;
    if (replayed) return { created: false, sandbox: replayed };
    throw err;
  } finally {
    ctx.pending.creates -= 1;
  }
}

function newSandboxId(): string {
  return `sbx-${randomBytes(8).toString('hex')}`;
}

function isAlreadyStarted(err: unknown): boolean {
  if (err instanceof WorkflowExecutionAlreadyStartedError) return true;
  return err instanceof ApiError && err.code === 'already_exists';
}
