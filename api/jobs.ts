// /v1/jobs: a sandbox that runs commands in order, records each result, then is destroyed
// (unless keepalive). A job's id is its sandbox's id, and it belongs to the same owner.
import { Router } from 'express';
import type { SandboxStatus } from '../workflows/types';
import { principalOf } from './auth';
import { ApiError } from './errors';
import { checkIdParam, idempotencyKey } from './request-params';
import type { SandboxService } from './sandboxes/service';
import { createJobBody } from './schemas';
import { wrap } from './wrap';

const jobView = (s: SandboxStatus) => ({
  id: s.id,
  sandboxId: s.id,
  owner: s.owner,
  state: s.job?.state ?? 'QUEUED',
  steps: s.job?.steps ?? [],
  error: s.job?.error ?? s.error,
  sandboxState: s.state,
  createdAt: s.createdAt,
  expiresAt: s.expiresAt,
});

export function jobRoutes(sandboxes: SandboxService): Router {
  const create = wrap(async (req, res) => {
    const body = createJobBody.parse(req.body ?? {});
    const { driver, template, ttlSeconds, labels, limits, commands, keepalive, commandTimeoutSeconds } = body;
    const job = { commands, keepalive, commandTimeoutSeconds };
    const key = idempotencyKey(req);
    const { created, sandbox } = await sandboxes.create(
      principalOf(req),
      { driver, template, ttlSeconds, labels, limits, wait: false, job },
      { idempotencyKey: key ? `job:${key}` : undefined },
    );
    res
      .status(created ? 201 : 200)
      .location(`/v1/jobs/${sandbox.id}`)
      .json(jobView(sandbox));
  });

  const get = wrap(async (req, res) => {
    const s = await sandboxes.get(principalOf(req), req.params.id!);
    if (!s.job) throw new ApiError(404, 'not_found', `job ${req.params.id} not found (sandbox ${s.id} runs no job)`);
    res.json(jobView(s));
  });

  const r = Router();
  checkIdParam(r, 'job');
  r.post('/', create);
  r.get('/:id', get);
  return r;
}
