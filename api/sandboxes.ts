// /v1/sandboxes routes: HTTP ↔ SandboxService, nothing else. Every call acts as the token's owner.
import { Router, type Request } from 'express';
import { principalOf, requesterOf, requireAdmin } from './auth';
import { ApiError } from './errors';
import type { SandboxService } from './sandbox-service';
import { ID_PATTERN, bulkDestroyBody, createSandboxBody, destroyBody, execBody, listQuery, pruneBody, renewBody } from './schemas';
import { stringProblem } from './input-hygiene';
import { wrap } from './wrap';

export const idempotencyKey = (req: Request) => {
  const key = req.get('idempotency-key');
  if (key !== undefined && (key.length === 0 || key.length > 200 || stringProblem(key))) {
    throw new ApiError(400, 'invalid_argument', 'Idempotency-Key header must be 1-200 characters of valid text');
  }
  return key;
};

/** Ids that no sandbox can have are a 400 before they reach the registry or Temporal. */
export function checkIdParam(router: Router, what: string): void {
  router.param('id', (_req, _res, next, id: string) =>
    next(ID_PATTERN.test(id) ? undefined : new ApiError(400, 'invalid_argument', `id: not a ${what} id`)),
  );
}

export function sandboxRoutes(service: SandboxService, reaper: { graceSeconds: number }): Router {
  const r = Router();
  checkIdParam(r, 'sandbox');

  r.post('/prune', wrap(async (req, res) => {
    requireAdmin(principalOf(req), 'prune');
    const body = pruneBody.parse(req.body ?? {});
    const report = await service.prune(body, reaper.graceSeconds);
    res.json({ count: report.count, dryRun: report.dryRun, counts: report.counts, items: report.items, runId: report.runId });
  }));

  r.post('/destroy', wrap(async (req, res) => {
    const body = bulkDestroyBody.parse(req.body ?? {});
    res.json(await service.bulkDestroy(principalOf(req), body, requesterOf(req)));
  }));

  r.post('/', wrap(async (req, res) => {
    const body = createSandboxBody.parse(req.body ?? {});
    const { created, sandbox } = await service.create(principalOf(req), body, { idempotencyKey: idempotencyKey(req) });
    if (created && sandbox.errorCode === 'bad_spec') {
      throw new ApiError(400, 'invalid_argument', sandbox.error ?? 'bad sandbox spec', { sandbox });
    }
    if (created && sandbox.errorCode === 'isolation_unavailable') {
      throw new ApiError(503, 'unavailable', sandbox.error ?? 'the driver cannot isolate sandboxes on this host', { sandbox });
    }
    res.status(created ? 201 : 200).location(`/v1/sandboxes/${sandbox.id}`).json(sandbox);
  }));

  r.get('/', wrap(async (req, res) => {
    const q = listQuery.parse(req.query);
    const filter = { state: q.state, labels: q.label, sessionId: q.sessionId, owner: q.owner, limit: q.limit, cursor: q.cursor };
    res.json(await service.list(principalOf(req), filter));
  }));

  r.get('/:id', wrap(async (req, res) => {
    res.json(await service.get(principalOf(req), req.params.id!));
  }));

  r.get('/:id/events', wrap(async (req, res) => {
    res.json({ items: await service.events(principalOf(req), req.params.id!) });
  }));

  r.get('/:id/execs', wrap(async (req, res) => {
    res.json({ items: await service.execs(principalOf(req), req.params.id!) });
  }));

  r.post('/:id/exec', wrap(async (req, res) => {
    const body = execBody.parse(req.body ?? {});
    res.json(await service.exec(principalOf(req), req.params.id!, body, idempotencyKey(req)));
  }));

  r.post('/:id/lease/renew', wrap(async (req, res) => {
    const body = renewBody.parse(req.body ?? {});
    if (body.async) {
      await service.renewBySignal(principalOf(req), req.params.id!, body.ttlSeconds);
      res.status(202).json({ id: req.params.id, accepted: true });
      return;
    }
    res.json(await service.renew(principalOf(req), req.params.id!, body.ttlSeconds, idempotencyKey(req)));
  }));

  r.post('/:id/stop', wrap(async (req, res) => {
    res.json(await service.stop(principalOf(req), req.params.id!));
  }));

  r.post('/:id/start', wrap(async (req, res) => {
    res.json(await service.start(principalOf(req), req.params.id!));
  }));

  const destroy = wrap(async (req, res) => {
    const body = destroyBody.parse(req.body ?? {});
    const force = body.force || req.query.force === 'true';
    const p = principalOf(req);
    const result = force
      ? await service.forceDestroy(p, req.params.id!, body.reason, requesterOf(req))
      : await service.requestDestroy(p, req.params.id!, body.reason, requesterOf(req));
    res.status(202).json(result);
  });
  r.post('/:id/destroy', destroy);
  r.delete('/:id', destroy);

  return r;
}
