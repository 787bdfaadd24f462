// PUT /v1/sandboxes/:id/files: the raw request body, streamed into a transfer's chunks in the
// registry (never whole in memory), then one update has the worker write it into the sandbox.
// The transfer is deleted whatever happens; past 100 MiB nothing is kept and the answer is a 413.
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { componentLogger } from '../../log/logger';
import { invalidStateMessage, isAllowed } from '../../workflows/states';
import {
  MAX_TRANSFER_BYTES,
  TooLargeError,
  createTransfer,
  deleteTransfer,
  writeTransferChunks,
} from '../../registry/transfers';
import { principalOf } from '../auth';
import { requireTransferSlot } from '../data-plane-caps';
import { ApiError } from '../errors';
import { authorize } from '../sandboxes/access';
import type { SandboxContext } from '../sandboxes/context';
import { fileOp } from './calls';
import { writeFileQuery } from './schemas';

const log = componentLogger('files');

function tooLarge(res: Response): ApiError {
  // The rest of the body is not read: close the connection rather than drain up to what is left.
  res.set('Connection', 'close');
  return new ApiError(413, 'too_large', `a file upload carries at most ${MAX_TRANSFER_BYTES} bytes (100 MiB)`, {
    max: MAX_TRANSFER_BYTES,
  });
}

export async function uploadFile(ctx: SandboxContext, req: Request, res: Response): Promise<void> {
  const q = writeFileQuery.parse(req.query);
  const id = req.params.id!;
  const { owner, row } = await authorize(ctx, principalOf(req), id);
  if (Number(req.get('content-length') ?? 0) > MAX_TRANSFER_BYTES) throw tooLarge(res);
  // The workflow decides; this only spares storing up to 100 MiB that it would refuse anyway.
  if (row && !isAllowed('files', row.state)) {
    res.set('Connection', 'close');
    throw new ApiError(409, 'invalid_state', invalidStateMessage('files', row.state), { state: row.state });
  }
  await requireTransferSlot(ctx.pool, ctx.opts, owner).catch((err: unknown) => {
    res.set('Connection', 'close'); // the body is not read
    throw err;
  });
  const transferId = randomUUID();
  await createTransfer(ctx.pool, { id: transferId, sandboxId: id, owner, direction: 'upload', path: q.path });
  let answer: { path: string; size: number; sha256: string };
  try {
    const { size, sha256 } = await writeTransferChunks(ctx.pool, transferId, req, MAX_TRANSFER_BYTES).catch(
      (err: unknown) => {
        throw err instanceof TooLargeError ? tooLarge(res) : err;
      },
    );
    const written = await fileOp(ctx, id, {
      op: 'write',
      path: q.path,
      ...(q.mode !== undefined ? { mode: q.mode } : {}),
      transferId,
      size,
      sha256,
    });
    answer = { path: written.path, size: written.size, sha256: written.sha256 };
  } finally {
    await deleteTransfer(ctx.pool, transferId).catch((err: unknown) =>
      log.warn({ err, sandboxId: id, transferId }, 'could not delete an upload’s transfer (the reaper will)'),
    );
  }
  // Answered once its transfer is gone: the client's next request never finds it counted against
  // the owner's transfers (a GET right after a PUT at the cap got 429).
  res.json(answer);
}
