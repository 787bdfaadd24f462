// Webhooks through the real API, worker, Temporal and PostgreSQL, delivered to a real HTTP receiver
// on loopback (the harness opts in with allowPrivate, as HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1 would):
// signed deliveries with stable ids, only the subscribed types and the owner's own sandboxes,
// retries with backoff, expiry, the private-address guard, delete, and no secret in clear.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postWebhook } from '../activities/webhook-post';
import { refusedAddressReason } from '../activities/webhook-address-guard';
import { ensureWebhookWorkflows, startWebhookWorkflow } from '../api/webhooks/workflow';
import { codecKeysOf } from '../codec/keys';
import { sealSecret } from '../codec/secret-box';
import { deliveryIdOf, insertWebhook, listDeliveries, openDelivery, recordDeliveryAttempt } from '../registry/webhooks';
import { webhookWorkflowId } from '../workflows/ids';
import { TEST_CODEC_KEY, eventually, settledEvents, startHarness, type Harness } from './support/harness';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const OPS = 'ops-token-0123456789abcdefghij';
const SECRET = 'alice-webhook-secret-0123456789';
/** Retry window of the harness's worker: long enough for 1 s + 2 s of backoff, short enough to see expiry. */
const RETRY_FOR_SECONDS = 8;

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the event body, read field by field
  body: any;
  at: number;
}

/** A real HTTP receiver: records every request; `answer` decides each status. */
function startReceiver(answer: (r: Received, nth: number) => number) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const r: Received = { path: req.url!, headers: req.headers, raw, body: JSON.parse(raw), at: Date.now() };
      received.push(r);
      const nth = received.filter((x) => x.path === r.path).length;
      res.writeHead(answer(r, nth)).end('ok');
    });
  });
  return {
    received,
    on: (path: string) => received.filter((r) => r.path === path),
    listen: () => new Promise<string>((ok) => server.listen(0, '127.0.0.1', () => ok(port()))),
    close: () => new Promise((r) => server.close(r)),
  };
  function port() {
    return String((server.address() as AddressInfo).port);
  }
}

/** What a receiver does with Hourglass-Signature (the README's snippet, the same steps). */
function verifySignature(secret: string, header: string, raw: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=') as [string, string]));
  const expected = createHmac('sha256', secret).update(`${parts.t}.${raw}`).digest('hex');
  const fresh = Math.abs(Date.now() / 1000 - Number(parts.t)) < 300;
  return fresh && timingSafeEqual(Buffer.from(expected), Buffer.from(parts.v1 ?? ''));
}

let h: Harness;
let alice: Harness['api'];
let bob: Harness['api'];
let ops: Harness['api'];
let base: string;
const receiver = startReceiver((r, nth) => {
  if (r.path === '/flaky') return nth <= 2 ? 500 : 200;
  if (r.path === '/blocked' && r.headers['hourglass-event'] === 'sandbox.running') return 503;
  return 204;
});

beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: 'alice', role: 'user', token: ALICE },
      { owner: 'bob', role: 'user', token: BOB },
      { owner: 'ops', role: 'admin', token: OPS },
    ],
    webhooks: { allowPrivate: true, retryForSeconds: RETRY_FOR_SECONDS },
  });
  [alice, bob, ops] = [h.apiAs(ALICE), h.apiAs(BOB), h.apiAs(OPS)];
  base = `http://127.0.0.1:${await receiver.listen()}`;
});
afterAll(async () => {
  await h?.close();
  await receiver.close();
});

async function subscribe(api: Harness['api'], path: string, events: string[], secret?: string) {
  const res = await api('POST', '/v1/webhooks', { url: base + path, events, ...(secret ? { secret } : {}) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; secret: string; owner: string; allOwners: boolean };
}

async function sandbox(api: Harness['api'], ttlSeconds: number): Promise<string> {
  const res = await api('POST', '/v1/sandboxes', { ttlSeconds });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

/** The registry's ids of a sandbox's events (the feed's global order). */
async function eventIds(sandboxId: string): Promise<string[]> {
  const { rows } = await h.pool.query<{ id: string }>(
    'SELECT id::text AS id FROM sandbox_events WHERE sandbox_id = $1 ORDER BY id',
    [sandboxId],
  );
  return rows.map((r) => r.id);
}

describe('subscriptions', () => {
  it('validates the body: http(s) URL without credentials, known event types, a secret of 16+ characters', async () => {
    const bad = [
      { url: 'ftp://example.com/x', events: ['*'] },
      { url: 'not a url', events: ['*'] },
      { url: 'https://user:pw@example.com/x', events: ['*'] },
      { url: 'https://example.com/x', events: [] },
      { url: 'https://example.com/x', events: ['sandbox.exploded'] },
      { url: 'https://example.com/x', events: ['sandbox.expired'], secret: 'short' },
      { url: 'https://example.com/x', events: ['*'], extra: 1 },
    ];
    for (const body of bad) {
      const res = await alice('POST', '/v1/webhooks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('invalid_argument');
    }
  });

  it('returns the secret once (generated when omitted), never again; other owners get 404', async () => {
    const created = await subscribe(alice, '/quiet', ['sandbox.failed']);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{32}$/);
    expect(created).toMatchObject({ owner: 'alice', allOwners: false });
    const got = await alice('GET', `/v1/webhooks/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('secret');
    const listed = await alice('GET', '/v1/webhooks');
    expect(listed.body.items.map((w: { id: string }) => w.id)).toContain(created.id);
    expect(JSON.stringify(listed.body)).not.toContain(created.secret);
    for (const [method, path] of [
      ['GET', `/v1/webhooks/${created.id}`],
      ['GET', `/v1/webhooks/${created.id}/deliveries`],
      ['DELETE', `/v1/webhooks/${created.id}`],
    ] as const) {
      expect((await bob(method, path)).status, `${method} ${path}`).toBe(404);
    }
    expect((await bob('GET', '/v1/webhooks')).body.items).toEqual([]);
    expect((await ops('GET', `/v1/webhooks/${created.id}`)).status).toBe(200);
  });

  it('stores the secret sealed, never in clear', async () => {
    const created = await subscribe(alice, '/sealed', ['sandbox.failed'], 'a-secret-nobody-may-read-0123');
    const { rows } = await h.pool.query(
      'SELECT row_to_json(w)::text AS json, secret_sealed FROM webhooks w WHERE id = $1',
      [created.id],
    );
    expect(rows[0].json).not.toContain('a-secret-nobody-may-read');
    expect((rows[0].secret_sealed as Buffer).includes(Buffer.from('a-secret-nobody-may-read'))).toBe(false);
    expect(rows[0].json).toContain(created.id); // the row is there: the check is not vacuous
  });
});

describe('deliveries', () => {
  it('delivers signed events of the subscribed types, for the owner’s sandboxes only, with stable ids', async () => {
    const hook = await subscribe(alice, '/alice', ['sandbox.expired', 'sandbox.destroyed'], SECRET);
    const all = await subscribe(ops, '/ops', ['sandbox.expired']);
    expect(all.allOwners).toBe(true);
    const bobs = await sandbox(bob, 2);
    const alices = await sandbox(alice, 2);

    const mine = await eventually(async () => {
      const got = receiver.on('/alice').filter((r) => r.body.sandboxId === alices);
      return got.length >= 2 && got;
    }, 30_000);
    expect(mine.map((r) => r.body.type)).toEqual(['sandbox.expired', 'sandbox.destroyed']);
    for (const r of mine) {
      expect(verifySignature(SECRET, String(r.headers['hourglass-signature']), r.raw)).toBe(true);
      expect(verifySignature('another-secret-0123456789', String(r.headers['hourglass-signature']), r.raw)).toBe(false);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['hourglass-event']).toBe(r.body.type);
      expect(r.headers['hourglass-delivery-id']).toBe(`${hook.id}:${r.body.id}`);
      expect(r.body).toMatchObject({ deliveryId: `${hook.id}:${r.body.id}`, owner: 'alice', sandboxId: alices });
    }
    expect(new Set(mine.map((r) => r.body.deliveryId)).size).toBe(2);

    // The admin's webhook sees both owners' sandboxes.
    await eventually(async () => {
      const ids = receiver.on('/ops').map((r) => r.body.sandboxId);
      return ids.includes(bobs) && ids.includes(alices);
    }, 30_000);

    // Once alice's subscription has read past every one of bob's events, none of them reached her.
    await settledEvents({ api: bob }, bobs, 'DESTROYED');
    const bobsLast = (await eventIds(bobs)).at(-1)!;
    await eventually(async () => {
      const { body } = await alice('GET', `/v1/webhooks/${hook.id}`);
      return BigInt(body.cursor) >= BigInt(bobsLast);
    }, 30_000);
    expect(receiver.on('/alice').filter((r) => r.body.sandboxId === bobs)).toEqual([]);
    expect(receiver.on('/alice').every((r) => ['sandbox.expired', 'sandbox.destroyed'].includes(r.body.type))).toBe(
      true,
    );
    // Each delivery once, recorded as delivered in one attempt.
    const { body } = await alice('GET', `/v1/webhooks/${hook.id}/deliveries`);
    expect(body.items.map((d: { status: string; attempts: number }) => [d.status, d.attempts])).toEqual([
      ['delivered', 1],
      ['delivered', 1],
    ]);
    expect(receiver.on('/alice')).toHaveLength(2);
  });

  it('retries a failing receiver with backoff: 500, 500, then 200 is one delivery of three attempts', async () => {
    const hook = await subscribe(alice, '/flaky', ['sandbox.expired']);
    const id = await sandbox(alice, 1);
    const tries = await eventually(async () => receiver.on('/flaky').length >= 3 && receiver.on('/flaky'), 30_000);
    expect(new Set(tries.map((r) => r.headers['hourglass-delivery-id']))).toEqual(
      new Set([`${hook.id}:${tries[0]!.body.id}`]),
    );
    expect(tries[0]!.body.sandboxId).toBe(id);
    // Backoff: about 1 s, then about 2 s.
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(800);
    expect(tries[2]!.at - tries[1]!.at).toBeGreaterThanOrEqual(1600);
    const deliveries = await eventually(async () => {
      const { body } = await alice('GET', `/v1/webhooks/${hook.id}/deliveries`);
      return body.items[0]?.status === 'delivered' && body.items;
    });
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200 });
    expect(deliveries[0].attemptLog.map((a: { statusCode: number }) => a.statusCode)).toEqual([500, 500, 200]);
    // Delivered means done: no fourth request comes later.
    await new Promise((r) => setTimeout(r, 3000));
    expect(receiver.on('/flaky')).toHaveLength(3);
  });

  it('marks a delivery expired after the retry window, then delivers the later events', async () => {
    const hook = await subscribe(alice, '/blocked', ['sandbox.running', 'sandbox.destroyed']);
    const id = await sandbox(alice, 2);
    const deliveries = await eventually(async () => {
      const { body } = await alice('GET', `/v1/webhooks/${hook.id}/deliveries`);
      return (
        body.items.length === 2 && body.items.every((d: { status: string }) => d.status !== 'pending') && body.items
      );
    }, 60_000);
    const [destroyed, running] = deliveries; // newest event first
    expect(running).toMatchObject({ eventType: 'sandbox.running', sandboxId: id, status: 'expired' });
    expect(running.attempts).toBeGreaterThanOrEqual(2);
    expect(running.attemptLog.every((a: { statusCode: number }) => a.statusCode === 503)).toBe(true);
    expect(destroyed).toMatchObject({ eventType: 'sandbox.destroyed', status: 'delivered', attempts: 1 });
    const times = receiver.on('/blocked').map((r) => r.at);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual((RETRY_FOR_SECONDS - 2) * 1000);
  });

  it('DELETE ends the workflow: no delivery after it', async () => {
    const hook = await subscribe(alice, '/deleted', ['*']);
    const id = await sandbox(alice, 120);
    await eventually(async () => receiver.on('/deleted').some((r) => r.body.type === 'sandbox.running'), 30_000);
    const deleted = await alice('DELETE', `/v1/webhooks/${hook.id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.deletedAt).toBeTruthy();
    // Cancelled, or completed on its own: the row is marked deleted before the cancel is sent, and a
    // wait that starts in between sees it and ends the workflow first (seen once in CI).
    await eventually(async () => {
      const d = await h.client.workflow.getHandle(webhookWorkflowId(hook.id)).describe();
      return ['CANCELLED', 'COMPLETED'].includes(d.status.name);
    }, 60_000); // the cancel reaches the wait activity at its next heartbeat: slow on a loaded machine
    const before = receiver.on('/deleted').length;
    expect((await alice('DELETE', `/v1/sandboxes/${id}`)).status).toBeLessThan(300);
    await settledEvents({ api: alice }, id, 'DESTROYED');
    await new Promise((r) => setTimeout(r, 2000));
    expect(receiver.on('/deleted')).toHaveLength(before);
    expect((await alice('GET', `/v1/webhooks/${hook.id}`)).status).toBe(404);
    expect((await alice('GET', '/v1/webhooks')).body.items.map((w: { id: string }) => w.id)).not.toContain(hook.id);
  });
});

describe('limits and restarts', () => {
  it('caps live webhooks per owner (20): the 21st is 429 quota_exceeded; a delete frees a place', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await subscribe(bob, `/bob-${i}`, ['sandbox.failed'])).id);
    const refused = await bob('POST', '/v1/webhooks', { url: `${base}/bob-20`, events: ['*'] });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({
      code: 'quota_exceeded',
      message: expect.stringContaining('at most 20'),
      details: { owner: 'bob', live: 20, max: 20 },
    });
    expect((await bob('DELETE', `/v1/webhooks/${ids.pop()}`)).status).toBe(200);
    ids.push((await subscribe(bob, '/bob-20', ['sandbox.failed'])).id);
    // Another owner is not held back by bob's.
    const alices = await subscribe(alice, '/alice-uncapped', ['sandbox.failed']);
    for (const id of [...ids]) expect((await bob('DELETE', `/v1/webhooks/${id}`)).status).toBe(200);
    expect((await alice('DELETE', `/v1/webhooks/${alices.id}`)).status).toBe(200);
  });

  it('restarts a terminated workflow from the registry cursor; a delivered event is not sent twice', async () => {
    const hook = await subscribe(alice, '/restart', ['sandbox.running']);
    const first = await sandbox(alice, 120);
    const firstDelivery = await eventually(
      async () => receiver.on('/restart').find((r) => r.body.sandboxId === first),
      30_000,
    );
    await h.client.workflow.getHandle(webhookWorkflowId(hook.id)).terminate('test: lost workflow');
    // As if the worker died between the delivery and mirroring the cursor: the registry is behind.
    const behind = String(BigInt(firstDelivery.body.id) - 1n);
    await h.pool.query('UPDATE webhooks SET cursor = $2 WHERE id = $1', [hook.id, behind]);
    const second = await sandbox(alice, 120);

    const ensured = await ensureWebhookWorkflows(h.client, h.pool, h.taskQueue);
    expect(ensured.checked).toBeGreaterThanOrEqual(1);
    const run = await h.client.workflow.getHandle(webhookWorkflowId(hook.id)).describe();
    expect(run.status.name).toBe('RUNNING');
    await eventually(async () => receiver.on('/restart').some((r) => r.body.sandboxId === second), 30_000);
    // The new run went over the first event again (cursor behind) and found it delivered.
    await eventually(async () => {
      const { body } = await alice('GET', `/v1/webhooks/${hook.id}`);
      return BigInt(body.cursor) > BigInt(firstDelivery.body.id);
    }, 30_000);
    expect(receiver.on('/restart').filter((r) => r.body.sandboxId === first)).toHaveLength(1);
    const { body } = await alice('GET', `/v1/webhooks/${hook.id}/deliveries`);
    expect(body.items.map((d: { sandboxId: string; attempts: number }) => [d.sandboxId, d.attempts])).toEqual([
      [second, 1],
      [first, 1],
    ]);
    await alice('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('numbers attempts in the registry: a restarted workflow’s attempt 1 is logged, not dropped', async () => {
    const keys = codecKeysOf([TEST_CODEC_KEY], 'test');
    const webhookId = `whk_attempts${Date.now()}`;
    await insertWebhook(h.pool, {
      id: webhookId,
      owner: 'alice',
      allOwners: false,
      url: `${base}/never`,
      events: ['*'],
      secret: sealSecret(keys, webhookId, SECRET),
    });
    const key = {
      id: deliveryIdOf(webhookId, '1'),
      webhookId,
      eventId: '1',
      eventType: 'sandbox.running',
      sandboxId: 'x',
    };
    await openDelivery(h.pool, key);
    const at = new Date().toISOString();
    const numbers = [];
    // Three attempts, as two runs of the workflow would make them (Temporal counting 1, 2, then 1 again).
    for (const statusCode of [500, 500, 200]) {
      numbers.push(
        await recordDeliveryAttempt(h.pool, key.id, { at, statusCode, durationMs: 5, delivered: statusCode === 200 }),
      );
    }
    expect(numbers).toEqual([1, 2, 3]);
    const [delivery] = (await listDeliveries(h.pool, webhookId, { limit: 10 })).items;
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200 });
    expect(delivery!.attemptLog.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    await h.pool.query('UPDATE webhooks SET deleted_at = now() WHERE id = $1', [webhookId]);
  });
});

describe('the private-address guard (HOURGLASS_WEBHOOK_ALLOW_PRIVATE unset)', () => {
  let guarded: Harness;
  beforeAll(async () => {
    guarded = await startHarness({ webhooks: { allowPrivate: false, retryForSeconds: 30 } });
  });
  afterAll(() => guarded?.close());

  it('refuses loopback, private, link-local and unspecified hosts at create (400)', async () => {
    for (const url of [
      `${base}/x`,
      'http://localhost/x',
      'http://127.1.2.3/x',
      'http://10.0.0.1/x',
      'http://192.168.1.1/x',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://[fd00:ec2::254]/x',
      'http://0.0.0.0/x',
    ]) {
      const res = await guarded.api('POST', '/v1/webhooks', { url, events: ['*'] });
      expect(res.status, url).toBe(400);
      expect(res.body.error.message, url).toMatch(/not a public address|HOURGLASS_WEBHOOK_ALLOW_PRIVATE/);
    }
    expect(refusedAddressReason('93.184.215.14')).toBeUndefined();
    expect(refusedAddressReason('2606:2800:21f:cb07:6820:80da:af6b:8b2c')).toBeUndefined();
    expect(refusedAddressReason('::ffff:a9fe:a9fe')).toBeDefined(); // 169.254.169.254, hex-mapped
  });

  it('refuses at delivery time too, on the address the connection uses (a name resolving to loopback)', async () => {
    const port = new URL(base).port;
    const sent = receiver.received.length;
    for (const url of [`http://localhost:${port}/rebound`, `http://127.0.0.1:${port}/rebound`]) {
      const r = await postWebhook({
        url,
        secret: SECRET,
        deliveryId: 'whk_x:1',
        eventType: 'sandbox.expired',
        body: '{}',
        allowPrivate: false,
      });
      expect(r, url).toMatchObject({ refused: true });
      expect(r.error).toMatch(/address refused: .*not a public address/);
    }
    expect(receiver.received.length).toBe(sent);

    // End to end: a webhook whose host resolves to loopback only after it was accepted (written
    // straight to the registry here) gets its delivery marked failed, and nothing is sent.
    const keys = codecKeysOf([TEST_CODEC_KEY], 'test');
    const webhookId = `whk_rebound${Date.now()}`;
    const webhook = await insertWebhook(guarded.pool, {
      id: webhookId,
      owner: 'local',
      allOwners: false,
      url: `http://localhost:${port}/rebound`,
      events: ['sandbox.running'],
      secret: sealSecret(keys, webhookId, SECRET),
    });
    await startWebhookWorkflow(guarded.client, guarded.taskQueue, webhook);
    const id = (await guarded.api('POST', '/v1/sandboxes', { ttlSeconds: 60 })).body.id;
    const delivery = await eventually(async () => {
      const { body } = await guarded.api('GET', `/v1/webhooks/${webhook.id}/deliveries`);
      return body.items[0]?.status !== 'pending' && body.items[0];
    }, 30_000);
    expect(delivery).toMatchObject({ status: 'failed', sandboxId: id, attempts: 1 });
    expect(delivery.lastError).toMatch(/address refused: localhost: 127\.0\.0\.1 is not a public address/);
    expect(receiver.on('/rebound')).toEqual([]);
  });
});
