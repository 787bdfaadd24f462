// Owners and tokens through the real API, worker, Temporal and PostgreSQL: a user token sees and
// touches only its owner's sandboxes, sessions and jobs (404 for the rest, so ids leak nothing);
// an admin token reaches every owner's; the owner comes from the token, never from a header.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxOwner } from '../workflows/search-attributes';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';
import { sandboxWorkflowId } from '../workflows/ids';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const OPS = 'ops-token-0123456789abcdefghij';
const CAROL = 'carol-token-0123456789abcdef';
// Owner names of this file only: the registry is shared by the whole run, and alice's quota of 3
// live sandboxes must not count another file's 'alice'.
const RUN = Date.now().toString(36);
const [A, B, C] = [`alice-${RUN}`, `bob-${RUN}`, `carol-${RUN}`];

let h: Harness;
let alice: Harness['api'];
let bob: Harness['api'];
let ops: Harness['api'];
let sbx: SandboxStatus;
const key = `alice-key-${Date.now()}`;

beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: A, role: 'user', token: ALICE },
      { owner: B, role: 'user', token: BOB },
      { owner: 'ops', role: 'admin', token: OPS },
      { owner: C, role: 'user', token: CAROL },
    ],
    maxSandboxesPerOwner: 3,
  });
  [alice, bob, ops] = [h.apiAs(ALICE), h.apiAs(BOB), h.apiAs(OPS)];
  const created = await alice(
    'POST',
    '/v1/sandboxes',
    { ttlSeconds: 120, labels: { team: 'red' } },
    { 'idempotency-key': key },
  );
  expect(created.status).toBe(201);
  sbx = created.body;
});
afterAll(() => h?.close());

describe('tokens', () => {
  it(
    'refuses requests without a token, with a wrong one, ' + 'and with a non-ASCII one of any length (401, never 500)',
    async () => {
      for (const token of [
        undefined,
        'wrong',
        'x'.repeat(ALICE.length),
        'é'.repeat(ALICE.length),
        'ø'.repeat(ALICE.length / 2),
      ]) {
        const res = await h.apiAs(token)('GET', '/v1/sandboxes');
        expect(res.status, `token ${token}`).toBe(401);
        expect(res.body.error.code).toBe('unauthorized');
      }
      expect((await h.apiAs(undefined)('GET', '/healthz')).status).not.toBe(401);
    },
  );

  it('the owner comes from the token: recorded on the sandbox, its registry row and its search attribute', async () => {
    expect(sbx.owner).toBe(A);
    const row = await h.pool.query('SELECT owner FROM sandboxes WHERE id = $1', [sbx.id]);
    expect(row.rows[0]?.owner).toBe(A);
    const d = await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).describe();
    expect(d.typedSearchAttributes.get(SandboxOwner)).toBe(A);
  });
});

describe("another owner's sandbox does not exist", () => {
  it('bob cannot list, get, read events or execs, exec, renew, stop, start or destroy it: 404 each time', async () => {
    const listed = await bob('GET', '/v1/sandboxes?limit=500');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((s: SandboxStatus) => s.id)).not.toContain(sbx.id);
    const byLabel = await bob('GET', '/v1/sandboxes?label=team=red');
    expect(byLabel.body.items).toEqual([]);

    const attempts: [string, string, unknown?][] = [
      ['GET', `/v1/sandboxes/${sbx.id}`],
      ['GET', `/v1/sandboxes/${sbx.id}/events`],
      ['GET', `/v1/sandboxes/${sbx.id}/execs`],
      ['POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['id'] }],
      ['POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 600 }],
      ['POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 600, async: true }],
      ['POST', `/v1/sandboxes/${sbx.id}/stop`],
      ['POST', `/v1/sandboxes/${sbx.id}/start`],
      ['POST', `/v1/sandboxes/${sbx.id}/destroy`, {}],
      ['DELETE', `/v1/sandboxes/${sbx.id}?force=true`],
      ['GET', `/v1/jobs/${sbx.id}`],
    ];
    const unknown = await bob('GET', '/v1/sandboxes/sbx-0000000000000000');
    for (const [method, path, body] of attempts) {
      const res = await bob(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    // Indistinguishable from an id that never existed.
    expect(unknown.body.error.message).toBe('sandbox sbx-0000000000000000 not found');
    expect((await bob('GET', `/v1/sandboxes/${sbx.id}`)).body.error.message).toBe(`sandbox ${sbx.id} not found`);

    const bulk = await bob('POST', '/v1/sandboxes/destroy', { ids: [sbx.id], force: true });
    expect(bulk.body).toMatchObject({
      count: 1,
      failed: 1,
      items: [{ id: sbx.id, ok: false, error: { code: 'not_found' } }],
    });
    const bulkByLabel = await bob('POST', '/v1/sandboxes/destroy', { label: 'team=red' });
    expect(bulkByLabel.body.count).toBe(0);

    // Nothing happened to it: still RUNNING, its lease untouched.
    const after = await alice('GET', `/v1/sandboxes/${sbx.id}`);
    expect(after.body).toMatchObject({ state: 'RUNNING', expiresAt: sbx.expiresAt });
  });

  it("replaying alice's Idempotency-Key as bob makes bob's own sandbox, never returns hers", async () => {
    const replay = await bob(
      'POST',
      '/v1/sandboxes',
      { ttlSeconds: 120, labels: { team: 'red' } },
      { 'idempotency-key': key },
    );
    expect(replay.status).toBe(201);
    expect(replay.body.id).not.toBe(sbx.id);
    expect(replay.body.owner).toBe(B);
    const again = await alice(
      'POST',
      '/v1/sandboxes',
      { ttlSeconds: 120, labels: { team: 'red' } },
      { 'idempotency-key': key },
    );
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(sbx.id);
    await bob('DELETE', `/v1/sandboxes/${replay.body.id}`);
  });

  it("bob cannot see alice's session nor put a sandbox into it", async () => {
    const { body: session } = await alice('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 60 });
    expect(session.owner).toBe(A);
    for (const [method, path] of [
      ['GET', `/v1/sessions/${session.id}`],
      ['POST', `/v1/sessions/${session.id}/heartbeat`],
      ['DELETE', `/v1/sessions/${session.id}`],
    ] as const) {
      expect((await bob(method, path)).status, `${method} ${path}`).toBe(404);
    }
    const join = await bob('POST', '/v1/sandboxes', { ttlSeconds: 60, sessionId: session.id });
    expect(join.status).toBe(400);
    expect(join.body.error.message).toBe(`sessionId: session ${session.id} does not exist`);
    expect((await alice('GET', `/v1/sessions/${session.id}`)).body.state).toBe('ACTIVE');
    expect((await ops('GET', `/v1/sessions/${session.id}`)).status).toBe(200);
    expect((await alice('DELETE', `/v1/sessions/${session.id}`)).status).toBe(202);
  });

  it("bob cannot read alice's job", async () => {
    const job = await alice('POST', '/v1/jobs', { commands: [['true']], ttlSeconds: 60 });
    expect(job.status).toBe(201);
    expect(job.body.owner).toBe(A);
    expect((await bob('GET', `/v1/jobs/${job.body.id}`)).status).toBe(404);
    await eventually(async () => (await alice('GET', `/v1/jobs/${job.body.id}`)).body.state === 'COMPLETED');
  });
});

describe('quota', () => {
  it('a user past its live sandboxes quota gets 429; destroying one makes room; admins are not counted', async () => {
    const carol = h.apiAs(CAROL);
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await carol('POST', '/v1/sandboxes', { ttlSeconds: 60 });
      expect(res.status).toBe(201);
      mine.push(res.body.id);
    }
    const refused = await carol('POST', '/v1/sandboxes', { ttlSeconds: 60 });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'quota_exceeded', details: { owner: C, live: 3, max: 3 } });
    await carol('DELETE', `/v1/sandboxes/${mine.pop()}`);
    await eventually(async () => (await carol('POST', '/v1/sandboxes', { ttlSeconds: 60 })).status === 201, 15_000);
    for (let i = 0; i < 4; i++) {
      expect((await ops('POST', '/v1/sandboxes', { ttlSeconds: 30, wait: false })).status).toBe(201);
    }
  });
});

describe('admins', () => {
  it('list every owner or one owner, and get, exec and read events of any sandbox', async () => {
    const all = await ops('GET', '/v1/sandboxes?limit=500');
    expect(all.body.items.map((s: SandboxStatus) => s.id)).toContain(sbx.id);
    const alices = await ops('GET', `/v1/sandboxes?owner=${A}&limit=500`);
    expect(alices.body.items.length).toBeGreaterThan(0);
    expect(alices.body.items.every((s: SandboxStatus) => s.owner === A)).toBe(true);
    // A user's owner filter cannot widen their view.
    const sneaky = await bob('GET', `/v1/sandboxes?owner=${A}`);
    expect(sneaky.body.items.every((s: SandboxStatus) => s.owner === B)).toBe(true);

    expect((await ops('GET', `/v1/sandboxes/${sbx.id}`)).body.owner).toBe(A);
    const ran = await ops('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['echo', 'admin was here'] });
    expect(ran.body).toMatchObject({ exitCode: 0, stdout: 'admin was here\n' });
    expect((await ops('GET', `/v1/sandboxes/${sbx.id}/events`)).status).toBe(200);
  });

  it('prune is for admins only (403 for a user)', async () => {
    const refused = await bob('POST', '/v1/sandboxes/prune', { dryRun: true });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'forbidden' });
    expect(refused.body.error.message).toMatch(/admin/);
    const ok = await ops('POST', '/v1/sandboxes/prune', { dryRun: true });
    expect(ok.status).toBe(200);
    expect(ok.body.dryRun).toBe(true);
  });

  it("X-Hourglass-Actor only annotates an admin's reason; a user cannot pose as someone else", async () => {
    const mine = (await bob('POST', '/v1/sandboxes', { ttlSeconds: 60 })).body;
    await bob('DELETE', `/v1/sandboxes/${mine.id}`, undefined, { 'x-hourglass-actor': 'alice' });
    const theirs = await eventually(async () => {
      const s = (await bob('GET', `/v1/sandboxes/${mine.id}`)).body;
      return s.state === 'DESTROYED' ? s : undefined;
    });
    expect(theirs.destroyReason).toBe(`destroy requested by ${B}`);

    const forced = await ops(
      'POST',
      `/v1/sandboxes/${sbx.id}/destroy`,
      { force: true, reason: 'cleanup' },
      { 'x-hourglass-actor': 'on-call' },
    );
    expect(forced.status).toBe(202);
    expect(forced.body).toMatchObject({
      state: 'DESTROYED',
      destroyReason: 'force destroy by ops (for on-call): cleanup',
    });
    const events = await ops('GET', `/v1/sandboxes/${sbx.id}/events`);
    expect(events.body.items.at(-1)).toMatchObject({
      to: 'DESTROYED',
      reason: 'force destroy by ops (for on-call): cleanup',
    });
    const d = await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).describe();
    expect(d.status.name).toBe('TERMINATED');
  });
});
