// /v1/sandboxes routes: HTTP ↔ SandboxService, nothing else.
import { Router, type Request } from 'express';
import { ApiError } from './errors';
import type { SandboxService } from './sandbox-service';
import { bulkDestroyBody, createSandboxBody, destroyBody, execBody, listQuery, pruneBody, renewBody } from './schemas';
import { wrap } from './wrap';


const actor = (req: Request) => req.get('x-hourglass-actor') ?? 'api';
const idempotencyKey = (req: Request) => {
  const key = req.get('idempotency-key');
  if (key !== undefined && (key.length === 0 || key.length > 200)) {
    throw new ApiError(400, 'invalid_argument', 'Idempotency-Key header must be 1-200 characters');
  }
  return key;
};

export function sandboxRoutes(service: SandboxService, reaper: { graceSeconds: number }): Router {
  const r = Router();

  r.post('/prune', wrap(async (req, res) => {
    const body = pruneBody.parse(req.body ?? {});
    const report = await service.prune(body, reaper.graceSeconds);
    res.json({ count: report.count, dryRun: report.dryRun, counts: report.counts, items: report.items, runId: report.runId });
  }));

  r.post('/destroy', wrap(async (req, res) => {
    const body = bulkDestroyBody.parse(req.body ?? {});
    res.json(await service.bulkDestroy(body, actor(req)));
  }));

  r.post('/', wrap(async (req, res) => {
    const body = createSandboxBody.parse(req.body ?? {});
    const { created, sandbox } = await service.create(body, { idempotencyKey: idempotencyKey(req), owner: actor(req) });
    if (created && sandbox.errorCode === 'bad_spec') {
      throw new ApiError(400, 'invalid_argument', sandbox.error ?? 'bad sandbox spec', { sandbox });
    }
    res.status(created ? 201 : 200).location(`/v1/sandboxes/${sandbox.id}`).json(sandbox);
  }));

  r.get('/', wrap(async (req, res) => {
    const q = listQuery.parse(req.query);
    res.json(await service.list({ state: q.state, labels: q.label, sessionId: q.sessionId, limit: q.limit, cursor: q.cursor }));
  }));

  r.get('/:id', wrap(async (req, res) => {
    res.json(await service.get(req.params.id!));
  }));

  r.get('/:id/events', wrap(async (req, res) => {
    res.json({ items: await service.events(req.params.id!) });
  }));

  r.get('/:id/execs', wrap(async (req, res) => {
    res.json({ items: await service.execs(req.params.id!) });
  }));

  r.post('/:id/exec', wrap(async (req, res) => {
    const body = execBody.parse(req.body ?? {});
    res.json(await service.exec(req.params.id!, body, idempotencyKey(req)));
  }));

  r.post('/:id/lease/renew', wrap(async (req, res) => {
    const body = renewBody.parse(req.body ?? {});
    if (body.async) {
      await service.renewBySignal(req.params.id!, body.ttlSeconds);
      res.status(202).json({ id: req.params.id, accepted: true });
      return;
    }
    res.json(await service.renew(req.params.id!, body.ttlSeconds, idempotencyKey(req)));
  }));

  r.post('/:id/stop', wrap(async (req, res) => {
    res.json(await service.stop(req.params.id!));
  }));

  r.post('/:id/start', wrap(async (req, res) => {
    res.json(await service.start(req.params.id!));
  }));

  const destroy = wrap(async (req, res) => {
    const body = destroyBody.parse(req.body ?? {});
    const force = body.force || req.query.force === 'true';
    const result = force
      ? await service.forceDestroy(req.params.id!, body.reason, actor(req))
      : await service.requestDestroy(req.params.id!, body.reason, actor(req));
    res.status(202).json(result);
  });
  r.post('/:id/destroy', destroy);
  r.delete('/:id', destroy);

  return r;
}
