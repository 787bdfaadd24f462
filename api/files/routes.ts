// /v1/sandboxes/:id/files…: upload, download, list, remove, mkdir. Mounted before the app's body
// parsers: an upload's body is raw bytes, streamed (any Content-Type, no charset check); only
// mkdir reads JSON, with the same parser and checks as every other route.
import express, { Router } from 'express';
import { principalOf } from '../auth';
import { cleanStrings, utf8BodiesOnly } from '../input-hygiene';
import { checkIdParam } from '../request-params';
import { authorize } from '../sandboxes/access';
import type { SandboxContext } from '../sandboxes/context';
import { wrap } from '../wrap';
import { fileOp } from './calls';
import { downloadFile } from './download';
import { listFilesQuery, mkdirBody, removeFileQuery } from './schemas';
import { uploadFile } from './upload';

export function fileRoutes(ctx: SandboxContext): Router {
  const list = wrap(async (req, res) => {
    const q = listFilesQuery.parse(req.query);
    const id = req.params.id!;
    await authorize(ctx, principalOf(req), id);
    const { path, entries, truncated } = await fileOp(ctx, id, { op: 'list', path: q.path ?? '.', limit: q.limit });
    res.json({ path, entries, truncated });
  });

  const remove = wrap(async (req, res) => {
    const q = removeFileQuery.parse(req.query);
    const id = req.params.id!;
    await authorize(ctx, principalOf(req), id);
    const { path, existed } = await fileOp(ctx, id, { op: 'remove', path: q.path, recursive: q.recursive ?? false });
    res.json({ path, existed });
  });

  const mkdir = wrap(async (req, res) => {
    const body = mkdirBody.parse(req.body ?? {});
    const id = req.params.id!;
    await authorize(ctx, principalOf(req), id);
    const { path } = await fileOp(ctx, id, { op: 'mkdir', path: body.path, parents: body.parents });
    res.status(201).json({ path });
  });

  const r = Router();
  checkIdParam(r, 'sandbox');
  // cleanStrings: query strings with no NUL or lone surrogate (an upload's body is bytes: not looked at).
  r.put(
    '/:id/files',
    cleanStrings,
    wrap((req, res) => uploadFile(ctx, req, res)),
  );
  r.get(
    '/:id/files',
    cleanStrings,
    wrap((req, res) => downloadFile(ctx, req, res)),
  );
  r.delete('/:id/files', cleanStrings, remove);
  r.get('/:id/files/list', cleanStrings, list);
  r.post('/:id/files/mkdir', utf8BodiesOnly, express.json({ limit: '1mb' }), cleanStrings, mkdir);
  return r;
}
