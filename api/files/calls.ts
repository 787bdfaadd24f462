// File operations on a sandbox's workflow: one update each (it says whether, the worker does it);
// the bytes go through the registry's transfers, never through the update.
import { filesUpdate } from '../../workflows/messages';
import type { FileOp, FileOpResult } from '../../workflows/types';
import type { SandboxContext } from '../sandboxes/context';
import { callSandbox, sandboxHandle } from '../sandboxes/workflow-call';

/** Moving up to 100 MiB into or out of a VM under emulation takes a while; the rest is quick. */
const TRANSFER_DEADLINE_MS = 15 * 60_000;
const OTHER_DEADLINE_MS = 120_000;

export async function fileOp<K extends FileOp['op']>(
  ctx: SandboxContext,
  id: string,
  op: Extract<FileOp, { op: K }>,
): Promise<Extract<FileOpResult, { op: K }>> {
  const ms = op.op === 'write' || op.op === 'read' ? TRANSFER_DEADLINE_MS : OTHER_DEADLINE_MS;
  const result = await callSandbox(ctx, id, 'files', () =>
    ctx.client.withDeadline(Date.now() + ms, () =>
      sandboxHandle(ctx.client, id).executeUpdate(filesUpdate, { args: [op] }),
    ),
  );
  return result as Extract<FileOpResult, { op: K }>;
}
