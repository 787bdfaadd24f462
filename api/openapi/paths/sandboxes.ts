// /v1/sandboxes routes (api/sandboxes/routes.ts). Request schemas are the ones the routes parse with.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { SANDBOX_STATES } from '../../../workflows/states';
import { bulkDestroyBody, createSandboxBody, destroyBody, listQuery, pruneBody, renewBody } from '../../schemas';
import { authErrors, idParams, idempotencyKeyHeader, json } from '../common';
import { eventStream, sandboxEventsRequest, streamLimit } from './events';
import {
  BulkDestroyResult,
  ExecRecords,
  ForcedDestroy,
  PruneReport,
  RenewAccepted,
  RenewLeaseResult,
  Sandbox,
  SandboxEvents,
  SandboxPage,
} from '../responses';

const tags = ['sandboxes'];
const params = idParams('sandbox');
const location = z.object({ Location: z.string().openapi({ description: 'The sandbox: /v1/sandboxes/{id}' }) });
/** An admin acting for someone else names them (api/auth.ts requesterOf); recorded in the destroy reason. */
const actorHeader = z.object({
  'X-Hourglass-Actor': z
    .string()
    .optional()
    .openapi({ param: { description: 'Admins only: whom the request is made for (recorded in the reason)' } }),
});

/** listQuery as the route parses it, with how each field is written in a query string. */
const listQueryDoc = listQuery.extend({
  state: listQuery.shape.state.openapi({
    param: { description: 'Only these states: repeat the parameter or separate with commas', style: 'form' },
    type: 'array',
    items: { type: 'string', enum: [...SANDBOX_STATES] },
  }),
  label: listQuery.shape.label.openapi({
    param: { description: 'Only sandboxes with this label, as key=value; repeat to require several' },
    type: 'array',
    items: { type: 'string', pattern: '^[^=]+=.*$' },
  }),
  owner: listQuery.shape.owner.openapi({ param: { description: 'Admins only: one owner’s sandboxes' } }),
  cursor: listQuery.shape.cursor.openapi({ param: { description: 'nextCursor of the previous page' } }),
});

export function registerSandboxPaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes',
    tags,
    summary: 'Create a sandbox (by default waits until it is RUNNING)',
    description:
      'With `wait: false` it answers at once in state REQUESTED. With an `Idempotency-Key`, retrying the ' +
      'same request answers 200 with the same sandbox; the same key with another body is a 422.',
    request: {
      headers: idempotencyKeyHeader('Names one sandbox per owner for good: a retry with the same body gets it back'),
      body: { required: true, content: json(createSandboxBody.openapi('CreateSandboxRequest')) },
    },
    responses: {
      201: { description: 'Created', headers: location, content: json(Sandbox) },
      200: { description: 'Replayed: this Idempotency-Key already created this sandbox', content: json(Sandbox) },
      ...authErrors(409, 413, 422, 429, 503, 504),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes',
    tags,
    summary: 'List sandboxes (yours; admins see everyone’s), newest first, a page at a time',
    request: { query: listQueryDoc },
    responses: { 200: { description: 'A page of sandboxes', content: json(SandboxPage) }, ...authErrors() },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/prune',
    tags,
    summary: 'Run the reaper now and get its report (admins)',
    request: { body: { required: false, content: json(pruneBody.openapi('PruneRequest')) } },
    responses: {
      200: { description: 'The reaper’s report', content: json(PruneReport) },
      ...authErrors(413, 502, 504),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/destroy',
    tags,
    summary: 'Destroy many sandboxes: by ids, by label, or both',
    description: 'Every sandbox gets its own result; one failing does not stop the others.',
    request: {
      headers: actorHeader,
      body: { required: true, content: json(bulkDestroyBody.openapi('BulkDestroyRequest')) },
    },
    responses: {
      200: { description: 'One result per sandbox', content: json(BulkDestroyResult) },
      ...authErrors(413),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}',
    tags,
    summary: 'A sandbox’s current state',
    request: { params },
    responses: { 200: { description: 'The sandbox', content: json(Sandbox) }, ...authErrors(404, 504) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}/events',
    tags,
    summary: 'A sandbox’s state transitions, oldest first; with follow=true a live stream that ends after DESTROYED',
    request: { params, ...sandboxEventsRequest },
    responses: {
      200: {
        description: 'Its transitions (JSON), or the stream of them from the first (or after Last-Event-ID)',
        content: { ...json(SandboxEvents), ...eventStream },
      },
      204: { description: 'Following after its DESTROYED event: nothing can come (EventSource stops retrying)' },
      ...authErrors(404),
      ...streamLimit,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}/execs',
    tags,
    summary: 'The commands run in a sandbox and their results, oldest first',
    request: { params },
    responses: { 200: { description: 'Its execs', content: json(ExecRecords) }, ...authErrors(404) },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/{id}/lease/renew',
    tags,
    summary: 'Renew a RUNNING sandbox’s lease: it now ends ttlSeconds from now (capped by maxLifetimeSeconds)',
    request: {
      params,
      headers: idempotencyKeyHeader('Names one renewal (not with async: true)'),
      body: { required: true, content: json(renewBody.openapi('RenewLeaseRequest')) },
    },
    responses: {
      200: { description: 'Renewed', content: json(RenewLeaseResult) },
      202: { description: '`async: true`: the renewal was sent; no answer waited for', content: json(RenewAccepted) },
      ...authErrors(404, 409, 413, 502, 503, 504),
    },
  });
  for (const op of ['stop', 'start'] as const) {
    registry.registerPath({
      method: 'post',
      path: `/v1/sandboxes/{id}/${op}`,
      tags,
      summary: op === 'stop' ? 'Stop a RUNNING sandbox (its lease keeps running)' : 'Start a STOPPED sandbox again',
      request: { params },
      responses: {
        200: { description: 'The sandbox after the operation', content: json(Sandbox) },
        ...authErrors(404, 409, 502, 503, 504),
      },
    });
  }
  const destroy = {
    tags,
    request: {
      params,
      query: z.object({
        force: z
          .enum(['true', 'false'])
          .optional()
          .openapi({ param: { description: 'Same as `force: true` in the body' } }),
      }),
      headers: actorHeader,
      body: { required: false, content: json(destroyBody.openapi('DestroyRequest')) },
    },
    responses: {
      202: {
        description:
          'Without force: the sandbox as it was when the lease was ended (its workflow destroys it). ' +
          'With force: destroyed, from any state.',
        content: json(z.union([Sandbox, ForcedDestroy])),
      },
      ...authErrors(404, 409, 413, 502, 504),
    },
  };
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/{id}/destroy',
    summary: 'Destroy a sandbox',
    ...destroy,
  });
  registry.registerPath({ method: 'delete', path: '/v1/sandboxes/{id}', summary: 'Destroy a sandbox', ...destroy });
}
