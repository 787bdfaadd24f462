// /v1/jobs: a sandbox that runs commands in order, records each result, then is destroyed
// (unless keepalive). A job's id is its sandbox's id.
import { Router } from 'express';
import type { SandboxStatus } from '../workflows/types';
import { ApiError } from './errors';
import type { SandboxService } from './sandbox-service';
import { createJobBody } from './schemas';
import { wrap } from './wrap';

const jobView = (s: SandboxStatus) => ({
  id: s.id,
  sandboxId: s.id,
  state: s.job?.state ?? 'QUEUED',
  steps: s.job?.steps ?? [],
  error: s.job?.error ?? s.error,
  sandboxState: s.state,
  createdAt: s.createdAt,
  expiresAt: s.expiresAt,
});

export function jobRoutes(sandboxes: SandboxService): Router {
  const r = Router();
  r.post('/', wrap(async (req, res) => {
    const body = createJobBody.parse(req.body ?? {});
    const key = req.get('idempotency-key');
    const { created, sandbox } = await sandboxes.create(
      {
        driver: body.driver,
        template: body.template,
        ttlSeconds: body.ttlSeconds,
        labels: body.labels,
        wait: false,
        job: { commands: body.commands, keepalive: body.keepalive, commandTimeoutSeconds: body.commandTimeoutSeconds },
      },
      { idempotencyKey: key ? `job:${key}` : undefined, owner: req.get('x-hourglass-actor') ?? 'api' },
    );
    res.status(created ? 201 : 200).location(`/v1/jobs/${sandbox.id}`).json(jobView(sandbox));
  }));
  r.get('/:id', wrap(async (req, res) => {
    const s = await sandboxes.get(req.params.id!);
    if (!s.job) throw new ApiError(404, 'not_found', `job ${req.params.id} not found (sandbox ${s.id} runs no job)`);
    res.json(jobView(s));
  }));
  return r;
}
