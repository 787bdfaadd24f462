// /v1/sessions routes (api/sessions/routes.ts).
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { createSessionBody } from '../../schemas';
import { authErrors, idParams, json } from '../common';
import { Session } from '../responses';

const tags = ['sessions'];
const params = idParams('session');

export function registerSessionPaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/v1/sessions',
    tags,
    summary: 'Open a session: its sandboxes are destroyed when heartbeats stop for heartbeatTimeoutSeconds',
    request: { body: { required: true, content: json(createSessionBody.openapi('CreateSessionRequest')) } },
    responses: {
      201: {
        description: 'Created',
        headers: z.object({ Location: z.string().openapi({ description: 'The session: /v1/sessions/{id}' }) }),
        content: json(Session),
      },
      ...authErrors(413, 504),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sessions/{id}',
    tags,
    summary: 'A session and its sandboxes',
    request: { params },
    responses: { 200: { description: 'The session', content: json(Session) }, ...authErrors(404, 504) },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/sessions/{id}/heartbeat',
    tags,
    summary: 'Keep an ACTIVE session alive for another heartbeatTimeoutSeconds',
    request: { params },
    responses: { 200: { description: 'The session', content: json(Session) }, ...authErrors(404, 409, 504) },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/sessions/{id}',
    tags,
    summary: 'End an ACTIVE session: its sandboxes are destroyed',
    request: {
      params,
      headers: z.object({
        'X-Hourglass-Actor': z
          .string()
          .optional()
          .openapi({ param: { description: 'Admins only: whom the request is made for (recorded in the reason)' } }),
      }),
    },
    responses: {
      202: { description: 'Ending: the session, state ENDED', content: json(Session) },
      ...authErrors(404, 409, 504),
    },
  });
}
