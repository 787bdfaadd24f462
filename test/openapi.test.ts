// The OpenAPI document and /docs, served by a real running API: the document is valid OpenAPI 3.1,
// it and the express app list the same routes, what it says is public is public, the docs page
// loads nothing from elsewhere, and its request schemas refuse what the API refuses.
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressRoutes } from './support/express-routes';
import { startHarness, type Harness } from './support/harness';

const TOKEN = 'openapi-test-admin-token-1234';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

interface Operation {
  security?: unknown[];
}
interface Doc {
  openapi: string;
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: {
    schemas: Record<string, { properties?: Record<string, { maximum?: number }> } & Record<string, unknown>>;
  };
}

let h: Harness;
let doc: Doc;

beforeAll(async () => {
  // No worker: nothing here reaches a workflow. With a token, so "public" means something.
  h = await startHarness({ worker: false, tokens: [{ owner: 'ops', role: 'admin', token: TOKEN }] });
  const res = await fetch(`${h.baseUrl}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Doc;
});

afterAll(async () => {
  await h?.close();
});

const documentedRoutes = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`),
  );

describe('/openapi.json', () => {
  it('is served without a token, cacheable, and is valid OpenAPI 3.1', async () => {
    const res = await fetch(`${h.baseUrl}/openapi.json`);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    expect(res.headers.get('etag')).toBeTruthy();
    expect(doc.openapi).toMatch(/^3\.1\./);
    const result = await new Validator().validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every express route, and every documented route exists', () => {
    const served = new Set(expressRoutes(h.app));
    const documented = new Set(documentedRoutes());
    const undocumented = [...served].filter((r) => !documented.has(r));
    const phantom = [...documented].filter((r) => !served.has(r));
    expect(served.size).toBeGreaterThan(20); // the walk found the routers' routes, not only the app's
    expect(undocumented, `express routes missing from the document:\n${undocumented.join('\n')}`).toEqual([]);
    expect(phantom, `documented routes express does not serve:\n${phantom.join('\n')}`).toEqual([]);
  });

  it('says which routes are public, and they are; every other route wants the bearer token', async () => {
    const publicRoutes: string[] = [];
    for (const route of documentedRoutes()) {
      const [method, path] = route.split(' ') as [string, string];
      const op = doc.paths[path]![method.toLowerCase() as (typeof METHODS)[number]]!;
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      if (isPublic) publicRoutes.push(route);
      const res = await fetch(h.baseUrl + path.replace(/\{[^}]+\}/g, 'sbx-openapi-test'), { method });
      await res.arrayBuffer();
      if (isPublic) expect(res.status, `${route} is documented as public`).not.toBe(401);
      else expect(res.status, `${route} is documented as needing a token`).toBe(401);
    }
    expect(publicRoutes.sort()).toEqual(['GET /docs', 'GET /docs/init.js', 'GET /healthz', 'GET /openapi.json']);
  });

  it('documents the Idempotency-Key header on creates, and the error envelope on every route', () => {
    const create = doc.paths['/v1/sandboxes']!.post as unknown as {
      parameters: { name: string; in: string }[];
      responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
    };
    expect(create.parameters).toContainEqual(expect.objectContaining({ name: 'Idempotency-Key', in: 'header' }));
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '403', '409', '422', '429', '503']),
    );
    for (const route of documentedRoutes()) {
      const [method, path] = route.split(' ') as [string, string];
      const op = doc.paths[path]![method.toLowerCase() as (typeof METHODS)[number]]! as typeof create;
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400 || (route === 'GET /healthz' && status === '503')) continue; // unhealthy: HealthStatus
        expect(response.content?.['application/json']?.schema.$ref, `${route} ${status}`).toBe(
          '#/components/schemas/Error',
        );
      }
    }
  });
});

describe('the documented create schema refuses what the API refuses', () => {
  const create = () => doc.components.schemas.CreateSandboxRequest!;

  it('an unknown field', async () => {
    expect(create().additionalProperties).toBe(false);
    expect(create().properties).not.toHaveProperty('image');
    const res = await h.api('POST', '/v1/sandboxes', { ttlSeconds: 60, image: 'ubuntu' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/image/) });
  });

  it('a ttlSeconds past the documented maximum', async () => {
    const max = create().properties!.ttlSeconds!.maximum!;
    expect(max).toBe(30 * 24 * 3600);
    const res = await h.api('POST', '/v1/sandboxes', { ttlSeconds: max + 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^ttlSeconds:/);
  });
});

describe('/docs', () => {
  it('is Swagger UI from this server only: local assets, a strict CSP, our own initializer', async () => {
    const res = await fetch(`${h.baseUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/default-src 'none'/);
    const html = await res.text();
    const refs = [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(expect.arrayContaining(['/docs/assets/swagger-ui-bundle.js', '/docs/init.js']));
    expect(
      refs.filter((r) => /^(https?:)?\/\//i.test(r)),
      'assets from elsewhere',
    ).toEqual([]);
    expect(html).not.toMatch(/<script>[^<]/); // no inline script (the CSP would refuse it)
    for (const ref of refs) {
      const asset = await fetch(h.baseUrl + ref);
      await asset.arrayBuffer();
      expect(asset.status, ref).toBe(200);
    }
    const bundle = await fetch(`${h.baseUrl}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
    const init = await (await fetch(`${h.baseUrl}/docs/init.js`)).text();
    expect(init).toContain("url: '/openapi.json'");
    expect(init).not.toMatch(/petstore\.swagger\.io/);
  });

  it('serves none of swagger-ui-dist but the assets the page uses (not its petstore initializer)', async () => {
    for (const path of [
      '/docs/assets/swagger-initializer.js',
      '/docs/assets/index.html',
      '/docs/assets/../package.json',
    ]) {
      const res = await fetch(h.baseUrl + path);
      await res.arrayBuffer();
      expect([401, 404], path).toContain(res.status);
    }
  });
});
