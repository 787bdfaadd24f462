// Service routes: /healthz, /metrics, and this document with its docs page. All public (no token) but /metrics.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { PUBLIC, authErrors, json } from '../common';

export const HealthStatus = z
  .object({
    ok: z.boolean(),
    registry: z.literal('ok').optional(),
    temporal: z.literal('ok').optional(),
    error: z.string().optional().openapi({ description: 'Why the service is unhealthy (503 only)' }),
  })
  .openapi('HealthStatus');

export function registerServicePaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    tags: ['service'],
    summary: 'Health: the registry (PostgreSQL), Temporal and embedded services answer',
    security: PUBLIC,
    responses: {
      200: { description: 'Healthy', content: json(HealthStatus) },
      503: { description: 'A dependency is down (`ok: false`, `error` says which)', content: json(HealthStatus) },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/metrics',
    tags: ['service'],
    summary: 'Prometheus metrics (text exposition format; admins)',
    description: 'Needs an admin token when tokens are configured; without tokens, loopback only like every route.',
    responses: {
      200: {
        description: 'Metrics in the Prometheus text format',
        content: { 'text/plain': { schema: z.string().openapi({ example: '# HELP …\n# TYPE …\n' }) } },
      },
      ...authErrors(),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    tags: ['service'],
    summary: 'This OpenAPI 3.1 document',
    security: PUBLIC,
    responses: {
      200: {
        description: 'The OpenAPI document',
        content: { 'application/json': { schema: z.object({ openapi: z.string() }).passthrough() } },
      },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs',
    tags: ['service'],
    summary: 'Interactive API docs (Swagger UI, served from this server; works offline)',
    security: PUBLIC,
    responses: { 200: { description: 'An HTML page', content: { 'text/html': { schema: z.string() } } } },
  });
  registry.registerPath({
    method: 'get',
    path: '/docs/init.js',
    tags: ['service'],
    summary: 'The docs page’s script: points Swagger UI at /openapi.json (its other assets: /docs/assets/…)',
    security: PUBLIC,
    responses: {
      200: { description: 'JavaScript', content: { 'application/javascript': { schema: z.string() } } },
    },
  });
}
