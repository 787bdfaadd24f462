// Who may act on a sandbox: its owner and admins. To anyone else it does not exist (404).
import { WorkflowNotFoundError } from '@temporalio/client';
import { getSandbox, type SandboxRow } from '../../registry/sandboxes';
import { SandboxDriver, SandboxOwner } from '../../workflows/search-attributes';
import { fromTemporal, notFound } from '../errors';
import type { Principal } from '../tokens';
import type { SandboxContext } from './context';
import { sandboxHandle } from './workflow-call';

/** Other owners' sandboxes do not exist for a non-admin caller: the same 404 as an unknown id. */
export const canSee = (p: Principal, owner: string) => p.role === 'admin' || p.owner === owner;

/**
 * The sandbox's owner and driver, from its registry row or (before the first row is written)
 * its workflow's search attributes; 404 when it is unknown or another owner's.
 */
export async function authorize(
  ctx: SandboxContext,
  p: Principal,
  id: string,
): Promise<{ owner: string; driver: string; row: SandboxRow | null }> {
  const row = await getSandbox(ctx.pool, id);
  let found: { owner: string; driver: string } | undefined = row ? { owner: row.owner, driver: row.driver } : undefined;
  // An unknown id costs a Temporal call (the row may not be written yet); so does another
  // owner's, so that the time of a 404 does not tell the two apart.
  if (!found || !canSee(p, found.owner)) {
    try {
      const attrs = (await sandboxHandle(ctx.client, id).describe()).typedSearchAttributes;
      const driver = attrs.get(SandboxDriver);
      if (driver) found ??= { owner: attrs.get(SandboxOwner) ?? 'local', driver };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw fromTemporal(err) ?? err;
    }
  }
  if (!found || !canSee(p, found.owner)) throw notFound(`sandbox ${id}`);
  return { ...found, row };
}
