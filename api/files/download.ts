// GET /v1/sandboxes/:id/files: one update has the worker copy the file (a directory: a tar of it)
// into a transfer's chunks in the registry; they are streamed out a chunk at a time, then deleted.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { componentLogger } from '../../log/logger';
import { createTransfer, deleteTransfer, readTransferChunks } from '../../registry/transfers';
import { principalOf } from '../auth';
import { requireTransferSlot } from '../data-plane-caps';
import { authorize } from '../sandboxes/access';
import type { SandboxContext } from '../sandboxes/context';
import { fileOp } from './calls';
import { readFileQuery } from './schemas';

const log = componentLogger('files');

export async function downloadFile(ctx: SandboxContext, req: Request, res: Response): Promise<void> {
  const q = readFileQuery.parse(req.query);
  const id = req.params.id!;
  const { owner } = await authorize(ctx, principalOf(req), id);
  await requireTransferSlot(ctx.pool, ctx.opts, owner);
  const transferId = randomUUID();
  await createTransfer(ctx.pool, { id: transferId, sandboxId: id, owner, direction: 'download', path: q.path });
  try {
    const file = await fileOp(ctx, id, { op: 'read', path: q.path, transferId });
    res.status(200).set({
      'Content-Type': file.kind === 'directory' ? 'application/x-tar' : 'application/octet-stream',
      'Content-Length': String(file.size),
      'Hourglass-File-Kind': file.kind,
      'Hourglass-Sha256': file.sha256,
    });
    try {
      await pipeline(Readable.from(readTransferChunks(ctx.pool, transferId)), res);
    } catch (err) {
      // Headers are out: the client sees a short body (Content-Length says so) and nothing else can be said.
      log.warn({ err, sandboxId: id, transferId }, 'a download stopped before its end');
      res.destroy();
    }
  } finally {
    await deleteTransfer(ctx.pool, transferId).catch((err: unknown) =>
      log.warn({ err, sandboxId: id, transferId }, 'could not delete a download’s transfer (the reaper will)'),
    );
  }
}
