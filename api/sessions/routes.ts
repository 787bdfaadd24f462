// /v1/sessions routes.
import { Router } from 'express';
import { principalOf, requesterOf } from '../auth';
import { checkIdParam } from '../request-params';
import { createSessionBody } from '../schemas';
import { wrap } from '../wrap';
import type { SessionService } from './service';

export function sessionRoutes(sessions: SessionService): Router {
  const create = wrap(async (req, res) => {
    const body = createSessionBody.parse(req.body ?? {});
    const session = await sessions.create(principalOf(req), body.heartbeatTimeoutSeconds);
    res.status(201).location(`/v1/sessions/${session.id}`).json(session);
  });

  const get = wrap(async (req, res) => {
    res.json(await sessions.get(principalOf(req), req.params.id!));
  });

  const heartbeat = wrap(async (req, res) => {
    res.json(await sessions.heartbeat(principalOf(req), req.params.id!));
  });

  const end = wrap(async (req, res) => {
    res.status(202).json(await sessions.end(principalOf(req), req.params.id!, requesterOf(req)));
  });

  const r = Router();
  checkIdParam(r, 'session');
  r.post('/', create);
  r.get('/:id', get);
  r.post('/:id/heartbeat', heartbeat);
  r.delete('/:id', end);
  return r;
}
