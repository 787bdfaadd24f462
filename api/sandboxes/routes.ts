// /v1/sandboxes routes: HTTP ↔ SandboxService, nothing else. Every call acts as the token's owner.
import { Router } from 'express';
import { Failure } from '../../workflows/failures';
import { principalOf, requesterOf, requireAdmin } from '../auth';
import { ApiError } from '../errors';
import { checkIdParam, idempotencyKey } from '../request-params';
import { bulkDestroyBody, createSandboxBody, destroyBody, listQuery, pruneBody, renewBody } from '../schemas';
import { wrap } from '../wrap';
import type { SandboxService } from './service';

export function sandboxRoutes(service: SandboxService, reaper: { graceSeconds: number }): Router {
  const prune = wrap(async (req, res) => {
    requireAdmin(principalOf(req), 'prune');
    const body = pruneBody.parse(req.body ?? {});
    const { count, dryRun, counts, items, runId, deferred } = await service.prune(body, reaper.graceSeconds);
    res.json({ count, dryRun, counts, items, runId, ...(deferred ? { deferred } : {}) });
  });

  const bulkDestroy = wrap(async (req, res) => {
    const body = bulkDestroyBody.parse(req.body ?? {});
    res.json(await service.bulkDestroy(principalOf(req), body, requesterOf(req)));
  });

  const create = wrap(async (req, res) => {
    const body = createSandboxBody.parse(req.body ?? {});
    const key = idempotencyKey(req);
    const { created, sandbox } = await service.create(principalOf(req), body, { idempotencyKey: key });
    if (created && sandbox.errorCode === Failure.BadSpec) {
      throw new ApiError(400, 'invalid_argument', sandbox.error ?? 'bad sandbox spec', { sandbox });
    }
    if (created && sandbox.errorCode === Failure.IsolationUnavailable) {
      const message = sandbox.error ?? 'the driver cannot isolate sandboxes on this host';
      throw new ApiError(503, 'unavailable', message, { sandbox });
    }
    res
      .status(created ? 201 : 200)
      .location(`/v1/sandboxes/${sandbox.id}`)
      .json(sandbox);
  });

  const list = wrap(async (req, res) => {
    const { state, label: labels, sessionId, owner, limit, cursor } = listQuery.parse(req.query);
    res.json(await service.list(principalOf(req), { state, labels, sessionId, owner, limit, cursor }));
  });

  const get = wrap(async (req, res) => {
    res.json(await service.get(principalOf(req), req.params.id!));
  });

  const events = wrap(async (req, res) => {
    res.json({ items: await service.events(principalOf(req), req.params.id!) });
  });

  const execs = wrap(async (req, res) => {
    res.json({ items: await service.execs(principalOf(req), req.params.id!) });
  });

  const renew = wrap(async (req, res) => {
    const body = renewBody.parse(req.body ?? {});
    if (body.async) {
      await service.renewBySignal(principalOf(req), req.params.id!, body.ttlSeconds);
      res.status(202).json({ id: req.params.id, accepted: true });
      return;
    }
    res.json(await service.renew(principalOf(req), req.params.id!, body.ttlSeconds, idempotencyKey(req)));
  });

  const stop = wrap(async (req, res) => {
    res.json(await service.stop(principalOf(req), req.params.id!));
  });

  const start = wrap(async (req, res) => {
    res.json(await service.start(principalOf(req), req.params.id!));
  });

  const destroy = wrap(async (req, res) => {
    const body = destroyBody.parse(req.body ?? {});
    const force = body.force || req.query.force === 'true';
    const p = principalOf(req);
    const result = force
      ? await service.forceDestroy(p, req.params.id!, body.reason, requesterOf(req))
      : await service.requestDestroy(p, req.params.id!, body.reason, requesterOf(req));
    res.status(202).json(result);
  });

  const r = Router();
  checkIdParam(r, 'sandbox');
  r.post('/prune', prune);
  r.post('/destroy', bulkDestroy);
  r.post('/', create);
  r.get('/', list);
  r.get('/:id', get);
  r.get('/:id/events', events);
  r.get('/:id/execs', execs);
  r.post('/:id/lease/renew', renew);
  r.post('/:id/stop', stop);
  r.post('/:id/start', start);
  r.post('/:id/destroy', destroy);
  r.delete('/:id', destroy);
  return r;
}
