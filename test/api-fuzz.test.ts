// Thousands of generated requests over every route (random methods, ids, query strings, bodies,
// charsets, tokens and keys) against the real API, worker, Temporal and PostgreSQL: none may
// answer 5xx, and every error keeps the { error: { code, message } } shape.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';

const USER = 'fuzz-user-token-0123456789';
const ADMIN = 'fuzz-admin-token-0123456789';

let h: Harness;
const realIds: string[] = [];
beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: 'fuzzer', role: 'user', token: USER },
      { owner: 'ops', role: 'admin', token: ADMIN },
    ],
  });
  for (let i = 0; i < 3; i++) {
    realIds.push((await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 600 })).body.id);
  }
  const { body: session } = await h.api('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 600 });
  realIds.push(session.id);
});
afterAll(() => h?.close());

const junkText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    '\0',
    '\ud800',
    '..',
    '../../etc/passwd',
    '%',
    '%zz',
    '%00',
    '%FF',
    'sbx-0000000000000000',
    'x'.repeat(300),
  ),
);
/** Percent-encodes every UTF-8 byte (a lone surrogate becomes U+FFFD, as any client would send it). */
const pct = (v: string) => [...Buffer.from(v, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** Path segments: real ids, junk, and raw percent-escapes (valid or not). */
const segment = fc.oneof(
  fc.constantFrom(...['sbx-0000000000000000', 'ses-0', '-', '.', '..']),
  { arbitrary: fc.constant('REAL'), weight: 3 },
  junkText.map(pct),
  fc.array(fc.constantFrom('%', 'F', 'f', '0', 'C', '8', 'E', 'z', 'a'), { maxLength: 9 }).map((c) => c.join('')),
);
const route = fc.constantFrom(
  '/v1/sandboxes',
  '/v1/sandboxes/:id',
  '/v1/sandboxes/:id/events',
  '/v1/sandboxes/:id/execs',
  '/v1/sandboxes/:id/exec',
  '/v1/sandboxes/:id/lease/renew',
  '/v1/sandboxes/:id/stop',
  '/v1/sandboxes/:id/start',
  '/v1/sandboxes/:id/destroy',
  '/v1/sandboxes/prune',
  '/v1/sandboxes/destroy',
  '/v1/sessions',
  '/v1/sessions/:id',
  '/v1/sessions/:id/heartbeat',
  '/v1/jobs',
  '/v1/jobs/:id',
  '/v1/codec/decode',
  '/v1/codec/encode',
  '/healthz',
  '/nope/:id',
);
const query = fc.array(
  fc.tuple(
    fc.constantFrom('state', 'label', 'limit', 'cursor', 'sessionId', 'owner', 'force', 'x', 'label[a]', 'state[]'),
    fc.oneof(junkText.map(pct), segment),
  ),
  { maxLength: 4 },
);
/** Values that look like what fields want, and values that do not. */
const anyValue = fc.oneof(
  fc.integer({ min: -5, max: 120 }),
  fc.double(),
  fc.constantFrom(
    0,
    1,
    5,
    1e13,
    -0,
    Number.MAX_SAFE_INTEGER,
    true,
    false,
    null,
    'RUNNING',
    'k=v',
    'process',
    'default',
  ),
  junkText,
  fc.array(junkText, { maxLength: 4 }),
  fc.dictionary(junkText, junkText, { maxKeys: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const fieldName = fc.constantFrom(
  'ttlSeconds',
  'driver',
  'template',
  'maxLifetimeSeconds',
  'readyTimeoutSeconds',
  'labels',
  'limits',
  'sessionId',
  'wait',
  'command',
  'timeoutSeconds',
  'env',
  'async',
  'force',
  'reason',
  'ids',
  'label',
  'dryRun',
  'olderThanSeconds',
  'heartbeatTimeoutSeconds',
  'commands',
  'keepalive',
  'payloads',
  'memoryMiB',
  '__proto__',
  'constructor',
);
const shapedBody = fc.dictionary(fieldName, anyValue, { maxKeys: 5 }).map((o) => JSON.stringify(o));
/**
 * Bodies valid in shape with junk where free text goes, sent where they fit: they reach the workflow, the registry,
 * the driver.
 */
const createBody = fc.record(
  {
    ttlSeconds: fc.integer({ min: 1, max: 30 }),
    wait: fc.constant(false),
    labels: fc.dictionary(
      junkText.filter((k) => k.length > 0 && k.length < 64),
      junkText,
      { maxKeys: 3 },
    ),
    template: junkText,
    limits: fc.record({ memoryMiB: fc.integer({ min: -1, max: 1 << 20 }), cpus: fc.double() }, { requiredKeys: [] }),
  },
  { requiredKeys: ['ttlSeconds', 'wait'] },
);
const json = <T>(a: fc.Arbitrary<T>) => a.map((o) => JSON.stringify(o));
const targeted = fc.oneof(
  fc.record({ method: fc.constant('POST'), route: fc.constant('/v1/sandboxes'), body: json(createBody) }),
  fc.record({
    method: fc.constant('POST'),
    route: fc.constant('/v1/sandboxes/:id/exec'),
    body: json(
      fc.record(
        {
          command: fc.array(junkText, { minLength: 1, maxLength: 3 }),
          env: fc.dictionary(junkText, junkText, { maxKeys: 2 }),
          timeoutSeconds: fc.constant(5),
        },
        { requiredKeys: ['command'] },
      ),
    ),
  }),
  fc.record({
    method: fc.constant('POST'),
    route: fc.constant('/v1/sandboxes/:id/lease/renew'),
    body: json(
      fc.record(
        { ttlSeconds: fc.integer({ min: -1, max: 10_000_000 }), async: fc.boolean() },
        { requiredKeys: ['ttlSeconds'] },
      ),
    ),
  }),
  fc.record({
    method: fc.constantFrom('POST', 'DELETE'),
    route: fc.constantFrom('/v1/sandboxes/:id/destroy', '/v1/sandboxes/:id'),
    body: json(fc.record({ reason: junkText, force: fc.boolean() }, { requiredKeys: [] })),
  }),
  fc.record({
    method: fc.constant('POST'),
    route: fc.constant('/v1/sandboxes/destroy'),
    body: json(
      fc.record(
        { ids: fc.array(fc.oneof(junkText, fc.constant('sbx-0000000000000000')), { maxLength: 3 }), label: junkText },
        { requiredKeys: [] },
      ),
    ),
  }),
  fc.record({
    method: fc.constant('POST'),
    route: fc.constant('/v1/jobs'),
    body: json(
      fc.record({
        commands: fc.array(fc.array(junkText, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 2 }),
        ttlSeconds: fc.integer({ min: 1, max: 20 }),
      }),
    ),
  }),
  fc.record({
    method: fc.constant('POST'),
    route: fc.constant('/v1/sessions'),
    body: json(fc.record({ heartbeatTimeoutSeconds: fc.integer({ min: -1, max: 100 }) })),
  }),
  fc.record({
    method: fc.constantFrom('GET', 'POST'),
    route: fc.constantFrom('/v1/sandboxes/:id/stop', '/v1/sandboxes/:id/start', '/v1/sessions/:id/heartbeat'),
    body: fc.constant(undefined),
  }),
  fc.record({
    method: fc.constant('POST'),
    route: fc.constantFrom('/v1/codec/decode', '/v1/codec/encode'),
    body: json(
      fc.record({
        payloads: fc.array(
          fc.record({
            metadata: fc.dictionary(junkText, fc.base64String()),
            data: fc.oneof(fc.base64String(), junkText),
          }),
          { maxLength: 3 },
        ),
      }),
    ),
  }),
);

const body: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  shapedBody,
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 60 }),
  fc.constantFrom(
    '{',
    '[]',
    'null',
    '"x"',
    '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}',
    '{"labels":{"a":"\\u0000"}}',
    '\ud800',
  ),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset="UTF-8"',
  'text/plain',
  'application/x-www-form-urlencoded',
  undefined,
);
// Mostly valid tokens, so most requests get past auth and into the routes.
const auth = fc.oneof(
  { arbitrary: fc.constant(USER), weight: 5 },
  { arbitrary: fc.constant(ADMIN), weight: 5 },
  { arbitrary: fc.constantFrom(undefined, 'wrong-token', 'é'.repeat(26), ''), weight: 1 },
);

/** What an HTTP client can put in a header value at all (fetch refuses the rest before sending). */
const headerSafe = (v: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v) && v.trim() === v;

const anyTarget = fc.record({ method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH'), route, body });
const request = fc.record({
  target: fc.oneof(anyTarget, targeted),
  id: segment,
  realId: fc.nat(),
  query,
  contentType,
  auth,
  idempotencyKey: fc.option(junkText.filter(headerSafe)),
  actor: fc.option(junkText.filter(headerSafe)),
});

describe('API fuzz', () => {
  it('answers every generated request below 500, with the error shape', async () => {
    const seen: Record<number, number> = {};
    const created = new Set<string>();
    await fc.assert(
      fc.asyncProperty(request, async ({ target, ...r }) => {
        const { method, route: path, body: sent } = target;
        const id = r.id === 'REAL' ? realIds[r.realId % realIds.length]! : r.id;
        const qs = r.query.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&');
        const url = `${h.baseUrl}${path.replace(':id', id)}${qs ? `?${qs}` : ''}`;
        const headers: Record<string, string> = {};
        if (r.contentType) headers['content-type'] = r.contentType;
        if (r.auth !== undefined) headers.authorization = `Bearer ${r.auth}`;
        if (r.idempotencyKey !== null) headers['idempotency-key'] = r.idempotencyKey;
        if (r.actor !== null) headers['x-hourglass-actor'] = r.actor;
        const withBody = sent !== undefined && method !== 'GET';
        const res = await fetch(url, {
          method,
          headers,
          body: withBody ? sent : undefined,
          signal: AbortSignal.timeout(90_000),
        });
        const text = await res.text();
        seen[res.status] = (seen[res.status] ?? 0) + 1;
        expect(
          res.status,
          `${method} ${url} ${withBody ? sent.slice(0, 200) : ''} → ${text.slice(0, 300)}`,
        ).toBeLessThan(500);
        if (res.status === 201 && path !== '/v1/sessions') created.add(JSON.parse(text).id);
        if (res.status >= 400) {
          const parsed = JSON.parse(text);
          expect(typeof parsed.error.code).toBe('string');
          expect(typeof parsed.error.message).toBe('string');
        }
      }),
      { numRuns: 3000, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), verbose: 1 },
    );
    console.log(`[api-fuzz] status codes: ${JSON.stringify(seen)}`);
    // The generated requests reach real work too, not only validation errors…
    expect(seen[201]).toBeGreaterThan(0);
    // …and whatever was accepted was also recorded: no input makes the registry writes fail.
    let missing: string[] = [];
    await eventually(async () => {
      const { rows } = await h.pool.query<{ id: string }>('SELECT id FROM sandboxes WHERE id = ANY($1)', [
        [...created],
      ]);
      missing = [...created].filter((id) => !rows.some((r) => r.id === id));
      return missing.length === 0;
    }, 60_000).catch(() => expect(missing, 'sandboxes accepted but never recorded').toEqual([]));
    expect(await (await fetch(`${h.baseUrl}/healthz`)).json()).toMatchObject({ ok: true });
  }, 900_000);
});
