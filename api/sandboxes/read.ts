// Reading sandboxes: one sandbox's live state, the list, a sandbox's events and execs.
import { WorkflowNotFoundError } from '@temporalio/client';
import { getSandbox, listEvents, listSandboxes, type ListFilter, type SandboxRow } from '../../registry/sandboxes';
import { listExecs } from '../../registry/execs';
import { getStatus } from '../../workflows/messages';
import { SandboxDriver, SandboxOwner, SandboxState } from '../../workflows/search-attributes';
import type { SandboxStatus } from '../../workflows/types';
import { fromTemporal, notFound } from '../errors';
import type { Principal } from '../tokens';
import { authorize } from './access';
import type { SandboxContext } from './context';
import { sandboxHandle } from './workflow-call';

/**
 * The live state from the workflow's query; the registry row when the workflow cannot answer.
 * `recorded`: the row, when the caller has just read it.
 */
export async function describe(ctx: SandboxContext, id: string, recorded?: SandboxRow | null): Promise<SandboxStatus> {
  recorded ??= await getSandbox(ctx.pool, id);
  // DESTROYED is final; a terminated run's query would still answer its last live state.
  if (recorded?.state === 'DESTROYED') return recorded;
  try {
    // The registry row names the owner (authorize() checks it): a run started before owners
    // existed carries the caller's old X-Hourglass-Actor in that field, which proves nothing.
    const live = await ctx.client.withDeadline(Date.now() + 3000, () => sandboxHandle(ctx.client, id).query(getStatus));
    return { ...live, owner: recorded?.owner ?? live.owner ?? 'local' };
  } catch (err) {
    if (recorded) return recorded;
    if (err instanceof WorkflowNotFoundError) throw notFound(`sandbox ${id}`);
    // No worker to answer the query yet: the server still knows what was set at start.
    return fromSearchAttributes(ctx, id).catch(() => {
      throw fromTemporal(err) ?? err;
    });
  }
}

async function fromSearchAttributes(ctx: SandboxContext, id: string): Promise<SandboxStatus> {
  const d = await sandboxHandle(ctx.client, id).describe();
  const memo = (d.memo ?? {}) as { labels?: Record<string, string>; maxExpiresAt?: string };
  return {
    id,
    owner: d.typedSearchAttributes.get(SandboxOwner) ?? 'local',
    state: (d.typedSearchAttributes.get(SandboxState) ?? 'REQUESTED') as SandboxStatus['state'],
    driver: d.typedSearchAttributes.get(SandboxDriver) ?? 'unknown',
    labels: memo.labels ?? {},
    createdAt: d.startTime.toISOString(),
    maxExpiresAt: memo.maxExpiresAt ?? d.startTime.toISOString(),
  };
}

/** The sandbox as its owner (or an admin) sees it; 404 for anyone else. */
export async function get(ctx: SandboxContext, p: Principal, id: string): Promise<SandboxStatus> {
  const { row } = await authorize(ctx, p, id);
  return describe(ctx, id, row);
}

/** A non-admin lists only their own sandboxes; an admin lists every owner's, or one owner's. */
export function list(ctx: SandboxContext, p: Principal, filter: ListFilter) {
  return listSandboxes(ctx.pool, { ...filter, owner: p.role === 'admin' ? filter.owner : p.owner });
}

export async function events(ctx: SandboxContext, p: Principal, id: string) {
  await authorize(ctx, p, id);
  return listEvents(ctx.pool, id);
}

export async function execs(ctx: SandboxContext, p: Principal, id: string) {
  await authorize(ctx, p, id);
  return listExecs(ctx.pool, id);
}
