// /v1/sessions routes.
import { Router } from 'express';
import { wrap } from './wrap';
import type { SessionService } from './session-service';
import { createSessionBody } from './schemas';

export function sessionRoutes(sessions: SessionService): Router {
  const r = Router();
  r.post('/', wrap(async (req, res) => {
    const body = createSessionBody.parse(req.body ?? {});
    const session = await sessions.create(body.heartbeatTimeoutSeconds);
    res.status(201).location(`/v1/sessions/${session.id}`).json(session);
  }));
  r.get('/:id', wrap(async (req, res) => {
    res.json(await sessions.get(req.params.id!));
  }));
  r.post('/:id/heartbeat', wrap(async (req, res) => {
    res.json(await sessions.heartbeat(req.params.id!));
  }));
  r.delete('/:id', wrap(async (req, res) => {
    res.status(202).json(await sessions.end(req.params.id!, req.get('x-hourglass-actor') ? `session ended by ${req.get('x-hourglass-actor')}` : undefined));
  }));
  return r;
}
