// /v1/jobs routes (api/jobs.ts): a job is a sandbox that runs commands in order.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { createJobBody } from '../../schemas';
import { authErrors, idParams, idempotencyKeyHeader, json } from '../common';
import { Job } from '../responses';

const tags = ['jobs'];

export function registerJobPaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/v1/jobs',
    tags,
    summary: 'Start a job: a sandbox runs the commands in order, records each result, then is destroyed',
    description: 'Answers at once (state QUEUED); poll GET /v1/jobs/{id}. `keepalive: true` keeps the sandbox.',
    request: {
      headers: idempotencyKeyHeader('Names one job per owner for good: a retry with the same body gets it back'),
      body: { required: true, content: json(createJobBody.openapi('CreateJobRequest')) },
    },
    responses: {
      201: {
        description: 'Created',
        headers: z.object({ Location: z.string().openapi({ description: 'The job: /v1/jobs/{id}' }) }),
        content: json(Job),
      },
      200: { description: 'Replayed: this Idempotency-Key already created this job', content: json(Job) },
      ...authErrors(409, 413, 422, 429, 504),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/jobs/{id}',
    tags,
    summary: 'A job’s state and the results of the commands run so far',
    request: { params: idParams('job') },
    responses: { 200: { description: 'The job', content: json(Job) }, ...authErrors(404, 504) },
  });
}
