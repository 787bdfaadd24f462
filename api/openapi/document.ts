// The OpenAPI 3.1 document, generated from the zod schemas the routes validate with.
//
// To document a new route group: write api/openapi/paths/<group>.ts exporting
// `register<Group>Paths(registry: OpenAPIRegistry)`, which calls `registry.registerPath({...})` once per
// route (request schemas imported from where the route validates them; errors from common.ts:
// `authErrors(404, 409 …)`, `idParams('sandbox')`, `PUBLIC` for routes before bearer auth), then add
// it to PATH_GROUPS below. test/openapi.test.ts fails while an express route is undocumented or a
// documented route does not exist.
import './extend-zod';
import { readFileSync } from 'node:fs';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { registerCodecPaths } from './paths/codec';
import { registerEventPaths } from './paths/events';
import { registerExecPaths } from './paths/execs';
import { registerFilePaths } from './paths/files';
import { registerJobPaths } from './paths/jobs';
import { registerSandboxPaths } from './paths/sandboxes';
import { registerServicePaths } from './paths/service';
import { registerSessionPaths } from './paths/sessions';
import { registerWebhookPaths } from './paths/webhooks';

const PATH_GROUPS: ((registry: OpenAPIRegistry) => void)[] = [
  registerServicePaths,
  registerSandboxPaths,
  registerExecPaths,
  registerFilePaths,
  registerEventPaths,
  registerSessionPaths,
  registerJobPaths,
  registerCodecPaths,
  registerWebhookPaths,
];

const TAGS = [
  { name: 'sandboxes', description: 'Sandboxes: create, run commands, renew the lease, stop/start, destroy' },
  { name: 'files', description: 'Files in a sandbox: upload, download (a directory as a tar), list, remove, mkdir' },
  { name: 'events', description: 'Live events: every sandbox transition in commit order, JSON or Server-Sent Events' },
  { name: 'sessions', description: 'Sessions: sandboxes that end together when heartbeats stop' },
  { name: 'jobs', description: 'Jobs: a sandbox that runs commands in order, then is destroyed' },
  { name: 'webhooks', description: 'Webhooks: signed, retried deliveries of sandbox events to your URL' },
  { name: 'codec', description: 'Temporal remote codec endpoint (admins; for the Temporal UI)' },
  { name: 'service', description: 'Health, metrics and this API description' },
];

const packageJson = new URL('../../package.json', import.meta.url);
const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

export function buildOpenApiDocument(): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description:
      'A token from HOURGLASS_API_TOKENS (`Authorization: Bearer <token>`); it decides the owner and role. ' +
      'With no tokens configured the API serves loopback only and every caller is the local admin.',
  });
  for (const register of PATH_GROUPS) register(registry);
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Hourglass API',
      version,
      description:
        'Control plane for agent sandboxes: each sandbox’s whole life is one Temporal workflow. ' +
        'Errors are always `{"error":{"code","message","details"}}`.',
    },
    servers: [{ url: '/', description: 'This server' }],
    security: [{ bearerAuth: [] }],
    tags: TAGS,
  });
}
