// Idempotency-Key on create: a key names one sandbox per owner, for good. The same key with the
// same body answers with that sandbox; with another body, 422.
import { createHash } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { getSandbox } from '../../registry/sandboxes';
import type { SandboxStatus } from '../../workflows/types';
import { ApiError } from '../errors';
import type { Principal } from '../tokens';
import { canSee } from './access';
import type { SandboxContext } from './context';
import { describe } from './read';
import { sandboxHandle } from './workflow-call';

/** The sandbox an Idempotency-Key names, per owner: the same key always names the same sandbox. */
export function sandboxIdForKey(owner: string, key: string): string {
  return `sbx-${createHash('sha256').update(`${owner}\0${key}`).digest('hex').slice(0, 16)}`;
}

/** What a replay compares: the request body, key order and undefined fields aside. */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** Same Idempotency-Key: the same sandbox if the body matches, 422 if it does not; null if there is none yet. */
export async function replay(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  hash: string,
): Promise<SandboxStatus | null> {
  const replayed = await replayUnchecked(ctx, id, hash);
  // A key is per owner, but a sandbox from before owners existed may sit at the id it maps to.
  if (replayed && !canSee(p, replayed.owner)) {
    throw new ApiError(409, 'already_exists', 'Idempotency-Key names a sandbox you cannot see: use another key');
  }
  return replayed;
}

async function replayUnchecked(ctx: SandboxContext, id: string, hash: string): Promise<SandboxStatus | null> {
  let memo: Record<string, unknown> | undefined;
  try {
    memo = (await sandboxHandle(ctx.client, id).describe()).memo;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // Its workflow may be past retention while the registry still has the sandbox: a key names
    // one sandbox for good, so answer with that one rather than start a second under its id.
    return getSandbox(ctx.pool, id);
  }
  if (memo?.requestHash !== hash) {
    throw new ApiError(422, 'idempotency_conflict', 'Idempotency-Key was already used with a different request body', {
      sandboxId: id,
    });
  }
  return describe(ctx, id);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
