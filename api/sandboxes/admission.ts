// Whether a create may go ahead: the session it joins is open, its owner is under quota, and this
// API process is not already waiting on too many creates.
import { countLiveSandboxes } from '../../registry/sandboxes';
import { ApiError } from '../errors';
import type { Principal } from '../tokens';
import type { SandboxContext } from './context';

/** A sandbox joins only an ACTIVE session of its own owner (another owner's session does not exist). */
export async function requireOpenSession(ctx: SandboxContext, p: Principal, sessionId: string): Promise<void> {
  const owner = await ctx.sessions?.ownerOf(sessionId);
  if (owner === undefined || owner.owner !== p.owner) {
    throw new ApiError(400, 'invalid_argument', `sessionId: session ${sessionId} does not exist`);
  }
  if (!owner.open) {
    const message = `session ${sessionId} has ended; sandboxes can only join an ACTIVE session`;
    throw new ApiError(409, 'invalid_state', message, { sessionId });
  }
}

/**
 * One owner cannot take the host from the others. Counted from the registry, so creates racing
 * each other may pass the limit by as many as are in flight at once.
 */
export async function requireQuota(ctx: SandboxContext, p: Principal): Promise<void> {
  if (p.role === 'admin') return;
  const live = await countLiveSandboxes(ctx.pool, p.owner);
  const max = ctx.opts.maxSandboxesPerOwner;
  if (live >= max) {
    const message = `${p.owner} already has ${live} live sandboxes (at most ${max}); destroy some first`;
    throw new ApiError(429, 'quota_exceeded', message, { owner: p.owner, live, max });
  }
}

/**
 * Past what the workers can create at once, new creates are refused at once (429) instead of
 * queueing for seconds while they compete with the destroys and renewals of running leases
 * (those are never refused). Counted per API process: the creates it is waiting on.
 */
export function requireCapacity(ctx: SandboxContext): void {
  const max = ctx.opts.maxPendingCreates;
  const pending = ctx.pending.creates;
  if (!max || pending < max) return;
  throw new ApiError(
    429,
    'overloaded',
    `${pending} sandboxes are being created right now (at most ${max} at once, HOURGLASS_MAX_PENDING_CREATES); ` +
      'retry in a moment',
    { pending, max },
    1,
  );
}
