// Live events over Server-Sent Events, through the real API, worker, Temporal and PostgreSQL:
// a sandbox's stream while it expires, the global feed's filters and owners, resuming with
// Last-Event-ID (also on another API instance: a restart), a lost LISTEN connection, order under
// concurrency, the limits (streams per owner, a reader that stops reading).
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app';
import { EventHub } from '../api/events/hub';
import { limitsPolicyFromEnv } from '../api/limits';
import { SandboxService } from '../api/sandboxes/service';
import { SessionService } from '../api/sessions/service';
import { TokenStore } from '../api/tokens';
import { WebhookService } from '../api/webhooks/service';
import { codecKeysOf } from '../codec/keys';
import type { FeedEvent } from '../registry/event-feed';
import { EventListener } from '../registry/event-listener';
import type { SandboxStatus } from '../workflows/types';
import { TEST_CODEC_KEY, eventually, startHarness, type Harness } from './support/harness';
import { SseClient, type SseMessage } from '../bench/lib/sse';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdefgh';
const OPS = 'ops-token-0123456789abcdefghij';
const TOKENS = [
  { owner: 'alice', role: 'user' as const, token: ALICE },
  { owner: 'bob', role: 'user' as const, token: BOB },
  { owner: 'ops', role: 'admin' as const, token: OPS },
];

let h: Harness;
let alice: Harness['api'];
let bob: Harness['api'];
let ops: Harness['api'];
const opened: SseClient[] = [];
const servers: { server: Server; hub: EventHub }[] = [];

beforeAll(async () => {
  h = await startHarness({ tokens: TOKENS });
  [alice, bob, ops] = [h.apiAs(ALICE), h.apiAs(BOB), h.apiAs(OPS)];
});
afterAll(async () => {
  for (const c of opened) c.close();
  for (const { server, hub } of servers) {
    await hub.close();
    await new Promise((r) => server.close(r));
  }
  await h?.close();
});

const mark = () => `m${Math.random().toString(36).slice(2, 10)}`;
const parse = (m: SseMessage) => JSON.parse(m.data) as FeedEvent;

/** Opens a stream with a token (kept for the clean-up: a stream left open would hold the server). */
async function sse(path: string, token: string, headers: Record<string, string> = {}, base = h.baseUrl) {
  const c = await SseClient.open(base + path, { authorization: `Bearer ${token}`, ...headers });
  opened.push(c);
  return c;
}

async function create(api: Harness['api'], body: Record<string, unknown>): Promise<SandboxStatus> {
  const res = await api<SandboxStatus>('POST', '/v1/sandboxes', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** The ids the registry holds for a label, in commit order: what a stream must have delivered. */
async function dbIds(label: [string, string], after = '0'): Promise<string[]> {
  const { rows } = await h.pool.query<{ id: string }>(
    `SELECT e.id::text AS id FROM sandbox_events e JOIN sandboxes s ON s.id = e.sandbox_id
      WHERE s.labels @> $1::jsonb AND e.id > $2::bigint ORDER BY e.id`,
    [JSON.stringify({ [label[0]]: label[1] }), after],
  );
  return rows.map((r) => r.id);
}

function expectIncreasing(ids: string[]): void {
  for (let i = 1; i < ids.length; i++) {
    expect(BigInt(ids[i]!) > BigInt(ids[i - 1]!), `${ids[i - 1]} < ${ids[i]}`).toBe(true);
  }
}

/** A second API on the same registry: another process after a restart, as far as a client can tell. */
async function secondApi(hubOptions: ConstructorParameters<typeof EventHub>[1] = {}) {
  const sessions = new SessionService(h.client, h.taskQueue);
  const service = new SandboxService(
    h.client,
    h.pool,
    {
      taskQueue: h.taskQueue,
      drivers: ['process'],
      defaultDriver: 'process',
      defaultMaxLifetimeSeconds: 3600,
      readyTimeoutSeconds: 60,
      limits: limitsPolicyFromEnv({}),
      maxSandboxesPerOwner: 1000,
    },
    sessions,
  );
  const webhooks = new WebhookService(h.client, h.pool, {
    taskQueue: h.taskQueue,
    codecKeys: codecKeysOf([TEST_CODEC_KEY], 'test'),
    allowPrivate: false,
  });
  const hub = new EventHub(h.pool, hubOptions);
  const app = createApp({
    sandboxes: service,
    sessions,
    webhooks,
    events: hub,
    reaperGraceSeconds: 1,
    tokens: TokenStore.of(TOKENS),
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  servers.push({ server, hub });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hub, server };
}

describe('a sandbox’s stream', () => {
  it('follows a sandbox while it expires: its whole life in order, then the stream ends', async () => {
    const sbx = await create(alice, { ttlSeconds: 3 });
    const stream = await sse(`/v1/sandboxes/${sbx.id}/events?follow=true`, ALICE);
    expect(stream.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toBe('text/event-stream');
    expect(stream.res.headers.get('cache-control')).toBe('no-cache');
    expect(stream.res.headers.get('x-accel-buffering')).toBe('no');
    const messages = await stream.rest(30_000); // returns only when the server ends the stream
    expect(stream.retry).toBeGreaterThan(0);
    const events = messages.map(parse);
    expectIncreasing(messages.map((m) => m.id!));
    for (const [m, e] of messages.map((m, i) => [m, events[i]!] as const)) {
      expect(m.id).toBe(e.id);
      expect(m.event).toBe(`sandbox.${e.to.toLowerCase()}`);
      expect(e).toMatchObject({ sandboxId: sbx.id, owner: 'alice', driver: 'process', type: m.event });
    }
    expect(events.at(-1)!.to).toBe('DESTROYED');
    const lifecycle = [...events].sort((a, b) => a.seq - b.seq).map((e) => e.to);
    expect(lifecycle[0]).toBe('REQUESTED');
    expect(lifecycle.slice(-4)).toEqual(['RUNNING', 'EXPIRED', 'DESTROYING', 'DESTROYED']);
    expect(events.find((e) => e.to === 'EXPIRED')!.reason).toBe('lease expired');

    // The JSON list (no follow) now names each event's global id: the same events.
    const listed = await alice('GET', `/v1/sandboxes/${sbx.id}/events`);
    expect(listed.body.items.map((e: { id: string; seq: number }) => [e.id, e.seq]).sort()).toEqual(
      events.map((e) => [e.id, e.seq]).sort(),
    );
    // Resuming after DESTROYED: nothing can come, 204 (EventSource stops reconnecting).
    const after = await sse(`/v1/sandboxes/${sbx.id}/events?follow=true`, ALICE, {
      'last-event-id': events.at(-1)!.id,
    });
    expect(after.status).toBe(204);
    // Resuming in the middle: exactly the rest.
    const mid = events.findIndex((e) => e.to === 'RUNNING');
    const rest = await sse(`/v1/sandboxes/${sbx.id}/events?follow=true&after=${events[mid]!.id}`, ALICE);
    expect((await rest.rest()).map((m) => m.id)).toEqual(events.slice(mid + 1).map((e) => e.id));
  });

  it('stays open a moment after DESTROYED: an event of the sandbox committed after it still arrives', async () => {
    const id = `sbx-${mark()}`;
    await h.pool.query(
      `INSERT INTO sandboxes (id, owner, driver, state, labels, created_at, seq)
       VALUES ($1, 'alice', 'process', 'DESTROYED', '{}'::jsonb, now(), 3)`,
      [id],
    );
    const write = (seq: number, from: string | null, to: string) =>
      h.pool.query(
        `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
         VALUES ($1, $2, $3, $4, 'test', now())`,
        [id, seq, from, to],
      );
    await write(1, null, 'REQUESTED');
    const stream = await sse(`/v1/sandboxes/${id}/events?follow=true`, ALICE);
    expect(parse((await stream.next())!).to).toBe('REQUESTED');
    // DESTROYED commits before DESTROYING (two writers): ids follow commit order, not seq.
    await write(3, 'DESTROYING', 'DESTROYED');
    const destroyed = parse((await stream.next())!);
    expect(destroyed.to).toBe('DESTROYED');
    await write(2, 'REQUESTED', 'DESTROYING');
    const rest = (await stream.rest(10_000)).map(parse);
    expect(rest.map((e) => [e.seq, e.to])).toEqual([[2, 'DESTROYING']]);
    // Now the client has everything: following again is a 204.
    const again = await sse(`/v1/sandboxes/${id}/events?follow=true`, ALICE, { 'last-event-id': rest[0]!.id });
    expect(again.status).toBe(204);
    // Resuming between DESTROYED and the straggler: the straggler, then the end.
    const between = await sse(`/v1/sandboxes/${id}/events?follow=true`, ALICE, { 'last-event-id': destroyed.id });
    expect(between.status).toBe(200);
    expect((await between.rest(10_000)).map((m) => m.id)).toEqual([rest[0]!.id]);
  });

  it('is another owner’s 404, as GET /:id; a bad Last-Event-ID is a 400', async () => {
    const sbx = await create(alice, { ttlSeconds: 60 });
    const foreign = await sse(`/v1/sandboxes/${sbx.id}/events?follow=true`, BOB);
    expect(foreign.status).toBe(404);
    expect(((await foreign.res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const bad = await sse(`/v1/sandboxes/${sbx.id}/events?follow=true`, ALICE, { 'last-event-id': 'abc' });
    expect(bad.status).toBe(400);
    expect(((await bad.res.json()) as { error: { message: string } }).error.message).toMatch(/Last-Event-ID/);
    // Admins see every owner's sandbox.
    const admin = await sse(`/v1/sandboxes/${sbx.id}/events?follow=true`, OPS);
    expect(admin.status).toBe(200);
    expect(parse((await admin.next())!).to).toBe('REQUESTED');
    admin.close();
    await alice('DELETE', `/v1/sandboxes/${sbx.id}`);
  });
});

describe('the global feed', () => {
  it('filters by label and state, and shows a user only their own owner’s events', async () => {
    const m = mark();
    const filter = `label=suite=${m}&state=RUNNING,DESTROYED`;
    const aliceStream = await sse(`/v1/events?follow=true&${filter}`, ALICE);
    // A user cannot widen their view with owner=: it is ignored, as on the list endpoint.
    const sneaky = await sse(`/v1/events?follow=true&${filter}&owner=bob`, ALICE);
    const adminStream = await sse(`/v1/events?follow=true&${filter}`, OPS);
    const mine = [await create(alice, { ttlSeconds: 60, labels: { suite: m } })];
    mine.push(await create(alice, { ttlSeconds: 60, labels: { suite: m, more: 'x' } }));
    const unlabelled = await create(alice, { ttlSeconds: 60, labels: { suite: `${m}-other` } });
    const bobs = await create(bob, { ttlSeconds: 60, labels: { suite: m } });
    for (const s of [...mine, unlabelled]) await alice('DELETE', `/v1/sandboxes/${s.id}`);
    await bob('DELETE', `/v1/sandboxes/${bobs.id}`);

    const destroyedAll = (ids: string[]) => (_: SseMessage, all: SseMessage[]) =>
      ids.every((id) => all.some((x) => parse(x).sandboxId === id && parse(x).to === 'DESTROYED'));
    const aliceSaw = (await aliceStream.until(destroyedAll(mine.map((s) => s.id)))).map(parse);
    const adminSaw = (await adminStream.until(destroyedAll([...mine, bobs].map((s) => s.id)))).map(parse);
    const sneakySaw = (await sneaky.until(destroyedAll(mine.map((s) => s.id)))).map(parse);
    for (const c of [aliceStream, adminStream, sneaky]) c.close();

    for (const saw of [aliceSaw, sneakySaw]) {
      expect(new Set(saw.map((e) => e.sandboxId))).toEqual(new Set(mine.map((s) => s.id)));
      expect(saw.every((e) => e.owner === 'alice')).toBe(true);
      expect(saw.map((e) => e.to).sort()).toEqual(['DESTROYED', 'DESTROYED', 'RUNNING', 'RUNNING']);
    }
    expect(new Set(adminSaw.map((e) => e.sandboxId))).toEqual(new Set([...mine, bobs].map((s) => s.id)));
    // Bob's feed never shows alice's events (checked after the fact, from the same ids, as JSON).
    const bobPage = await bob('GET', `/v1/events?label=suite=${m}`);
    expect(bobPage.status).toBe(200);
    expect(bobPage.body.items.length).toBeGreaterThan(0);
    expect(bobPage.body.items.every((e: FeedEvent) => e.owner === 'bob' && e.sandboxId === bobs.id)).toBe(true);
  });

  it('pages as JSON without follow (after, limit, nextAfter), for polling', async () => {
    const m = mark();
    const sbx = await create(alice, { ttlSeconds: 60, labels: { suite: m } });
    await alice('DELETE', `/v1/sandboxes/${sbx.id}`);
    const all = await eventually(async () => {
      const ids = await dbIds(['suite', m]);
      const done = (await alice('GET', `/v1/sandboxes/${sbx.id}/events`)).body.items.some(
        (e: FeedEvent) => e.to === 'DESTROYED',
      );
      return done && ids;
    });
    const seen: string[] = [];
    let after = '0';
    for (let i = 0; i < 20; i++) {
      const page = await alice('GET', `/v1/events?label=suite=${m}&after=${after}&limit=2`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((e: FeedEvent) => e.id));
      if (page.body.items.length < 2) break;
      after = page.body.nextAfter;
    }
    expect(seen).toEqual(all);
    const bad = await alice('GET', '/v1/events?after=-1');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_argument');
    expect((await alice('GET', '/v1/events?state=NOPE')).status).toBe(400);
  });

  it('refuses ids past the bigint range and past the newest event: 400s, never a 500 or a silent stream', async () => {
    const errorOf = async (c: SseClient) => ({
      status: c.status,
      ...((await c.res.json()) as { error: { code: string; message: string } }).error,
    });
    // 19 digits, above 2^63-1: PostgreSQL's ::bigint would refuse it inside the query.
    const huge = '9999999999999999999';
    const page = await alice('GET', `/v1/events?after=${huge}`);
    expect(page.status).toBe(400);
    expect(page.body.error).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^after: /) });
    const sbx = await create(alice, { ttlSeconds: 60 });
    for (const path of ['/v1/events?follow=true', `/v1/sandboxes/${sbx.id}/events?follow=true`]) {
      expect(await errorOf(await sse(`${path}&after=${huge}`, ALICE))).toMatchObject({
        status: 400,
        code: 'invalid_argument',
        message: expect.stringMatching(/^after: .*9223372036854775807/),
      });
      expect(await errorOf(await sse(path, ALICE, { 'last-event-id': huge }))).toMatchObject({
        status: 400,
        code: 'invalid_argument',
        message: expect.stringMatching(/^Last-Event-ID: /),
      });
    }
    // In range, but no such id was handed out yet (another database's, a restored backup's):
    // waiting for it would be a stream that never says anything.
    const { rows } = await h.pool.query<{ id: string }>(`SELECT max(id)::text AS id FROM sandbox_events`);
    const future = (BigInt(rows[0]!.id) + 1_000_000n).toString();
    const ahead = await errorOf(await sse(`/v1/events?follow=true`, ALICE, { 'last-event-id': future }));
    expect(ahead).toMatchObject({ status: 400, code: 'invalid_argument' });
    expect(ahead.message).toMatch(new RegExp(`^Last-Event-ID: ${future} is past the newest event id \\(\\d+\\)$`));
    const newest = BigInt(/\((\d+)\)$/.exec(ahead.message)![1]!);
    expect(newest >= BigInt(rows[0]!.id) && newest < BigInt(future)).toBe(true);
    const aheadPage = await alice('GET', `/v1/events?after=${future}`);
    expect(aheadPage.status).toBe(400);
    expect(aheadPage.body.error.message).toMatch(/^after: .* is past the newest event id/);
    await alice('DELETE', `/v1/sandboxes/${sbx.id}`);
  });
  it('filters by session', async () => {
    const session = await alice('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 120 });
    expect(session.status).toBe(201);
    const stream = await sse(`/v1/events?follow=true&session=${session.body.id}`, ALICE);
    const outside = await create(alice, { ttlSeconds: 60 });
    const inside = await create(alice, { ttlSeconds: 60, sessionId: session.body.id });
    const saw = (await stream.until((x) => parse(x).to === 'RUNNING')).map(parse);
    stream.close();
    expect(saw.length).toBeGreaterThan(0);
    expect(saw.every((e) => e.sandboxId === inside.id && e.sessionId === session.body.id)).toBe(true);
    await alice('DELETE', `/v1/sessions/${session.body.id}`);
    await alice('DELETE', `/v1/sandboxes/${outside.id}`);
  });
});

describe('resume', () => {
  it('resumes with Last-Event-ID: exactly the missing events, no duplicate, no gap — also on another API', async () => {
    const m = mark();
    const label = `label=suite=${m}`;
    const first = await sse(`/v1/events?follow=true&${label}`, ALICE);
    const a = await create(alice, { ttlSeconds: 60, labels: { suite: m } });
    const part1 = await first.until((x) => parse(x).to === 'RUNNING');
    first.close();
    const lastSeen = part1.at(-1)!.id!;

    // Activity while nobody listens: a second sandbox, and the first one destroyed.
    const b = await create(alice, { ttlSeconds: 60, labels: { suite: m } });
    await alice('DELETE', `/v1/sandboxes/${a.id}`);
    const missed = await eventually(async () => {
      const ids = await dbIds(['suite', m], lastSeen);
      const rows = await h.pool.query(`SELECT 1 FROM sandbox_events WHERE sandbox_id = $1 AND to_state = 'DESTROYED'`, [
        a.id,
      ]);
      return rows.rowCount === 1 && ids;
    });
    const second = await sse(`/v1/events?follow=true&${label}`, ALICE, { 'last-event-id': lastSeen });
    const part2 = await second.until((_, all) => all.length === missed.length, 20_000);
    expect(part2.map((x) => x.id)).toEqual(missed);
    second.close();

    // "Restart": a fresh API process-equivalent (its own hub and LISTEN connection), same registry.
    const other = await secondApi();
    const lastBeforeRestart = part2.at(-1)!.id!;
    await alice('DELETE', `/v1/sandboxes/${b.id}`);
    const third = await sse(
      `/v1/events?follow=true&${label}`,
      ALICE,
      { 'last-event-id': lastBeforeRestart },
      other.base,
    );
    expect(third.status).toBe(200);
    const part3 = await third.until((x) => parse(x).sandboxId === b.id && parse(x).to === 'DESTROYED', 30_000);
    // Live events after the backlog, through the new hub: one more sandbox.
    const c = await create(alice, { ttlSeconds: 60, labels: { suite: m } });
    const part4 = await third.until((x) => parse(x).sandboxId === c.id && parse(x).to === 'RUNNING', 30_000);
    third.close();
    await alice('DELETE', `/v1/sandboxes/${c.id}`);

    const received = [...part1, ...part2, ...part3, ...part4].map((x) => x.id!);
    expectIncreasing(received);
    const upTo = await dbIds(['suite', m]);
    expect(received).toEqual(upTo.slice(0, received.length));
    expect(received.at(-1)).toBe(part4.at(-1)!.id);
  });
  it('loses nothing when its LISTEN connection is killed: the hub reconnects and re-reads', async () => {
    const other = await secondApi();
    const m = mark();
    const stream = await sse(`/v1/events?follow=true&label=suite=${m}`, ALICE, {}, other.base);
    const pid = await eventually(async () => other.hub.listener.backendPid);
    await h.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    // Written while the connection is down or coming back: only the reconnect's re-read can find it.
    const sbx = await create(alice, { ttlSeconds: 60, labels: { suite: m } });
    const got = await stream.until((x) => parse(x).to === 'RUNNING', 30_000);
    stream.close();
    expect(await eventually(async () => other.hub.listener.backendPid)).not.toBe(pid);
    const inDb = await dbIds(['suite', m]);
    expect(got.map((x) => x.id)).toEqual(inDb.slice(0, got.length));
    expect(got.every((x) => parse(x).sandboxId === sbx.id)).toBe(true);
    await alice('DELETE', `/v1/sandboxes/${sbx.id}`);
  });
});

describe('order under concurrency', () => {
  it('50 sandboxes at once: a live follower and one catching up from the start get every id, increasing', async () => {
    const m = mark();
    const N = 50;
    const live = await sse(`/v1/events?follow=true&label=suite=${m}`, OPS);
    const created = await Promise.all(
      Array.from({ length: N }, () => create(alice, { ttlSeconds: 120, labels: { suite: m } })),
    );
    // Joins while events still arrive: its backlog from the database, then the hub's, seamlessly.
    const late = await sse(`/v1/events?follow=true&label=suite=${m}&after=0`, OPS);
    const destroyed = await ops('POST', '/v1/sandboxes/destroy', { label: `suite=${m}` });
    expect(destroyed.status).toBe(200);
    const allDestroyed = (_: SseMessage, all: SseMessage[]) =>
      all.filter((x) => parse(x).to === 'DESTROYED').length === N;
    const [a, b] = await Promise.all([live.until(allDestroyed, 120_000), late.until(allDestroyed, 120_000)]);
    live.close();
    late.close();
    const inDb = await dbIds(['suite', m]);
    for (const got of [a, b]) {
      const ids = got.map((x) => x.id!);
      expectIncreasing(ids);
      // Events written after a DESTROYED (none expected) would be missing from the prefix check only.
      expect(ids).toEqual(inDb.slice(0, ids.length));
      expect(new Set(got.map((x) => parse(x).sandboxId))).toEqual(new Set(created.map((s) => s.id)));
    }
  }, 180_000);
});

describe('limits', () => {
  it('caps concurrent streams per owner with a 429 in the house format, and frees the slot on disconnect', async () => {
    const other = await secondApi({ maxStreamsPerOwner: 3 });
    const streams = [];
    for (let i = 0; i < 3; i++) streams.push(await sse('/v1/events?follow=true', BOB, {}, other.base));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200]);
    const refused = await sse('/v1/events?follow=true', BOB, {}, other.base);
    expect(refused.status).toBe(429);
    expect(((await refused.res.json()) as { error: unknown }).error).toMatchObject({
      code: 'rate_limited',
      details: { max: 3 },
    });
    // Another owner has slots of their own.
    expect((await sse('/v1/events?follow=true', ALICE, {}, other.base)).status).toBe(200);
    streams[0]!.close();
    await eventually(async () => other.hub.streams === 3);
    expect((await sse('/v1/events?follow=true', BOB, {}, other.base)).status).toBe(200);
  });

  it('caps the streams of the whole process with a 503 and Retry-After, whoever asks', async () => {
    const other = await secondApi({ maxStreams: 2, maxStreamsPerOwner: 5 });
    const open = [await sse('/v1/events?follow=true', ALICE, {}, other.base)];
    open.push(await sse('/v1/events?follow=true', BOB, {}, other.base));
    expect(open.map((s) => s.status)).toEqual([200, 200]);
    const refused = await sse('/v1/events?follow=true', OPS, {}, other.base);
    expect(refused.status).toBe(503);
    expect(refused.res.headers.get('retry-after')).toBe('5');
    expect(((await refused.res.json()) as { error: unknown }).error).toMatchObject({
      code: 'unavailable',
      details: { max: 2 },
    });
    open[0]!.close();
    await eventually(async () => other.hub.streams === 1);
    expect((await sse('/v1/events?follow=true', OPS, {}, other.base)).status).toBe(200);
  });

  it('cuts a reader that stops reading once its buffer is over the bound (it resumes later)', async () => {
    const other = await secondApi({
      sse: { retryMs: 1000, heartbeatMs: 15_000, maxBufferedBytes: 64 * 1024, stallMs: 2000 },
    });
    const m = mark();
    // 20,000 real rows: one (ended) sandbox of bob's with a long history, written straight to the registry.
    await h.pool.query(
      `INSERT INTO sandboxes (id, owner, driver, state, labels, created_at, seq)
       VALUES ($1, 'bob', 'process', 'DESTROYED', $2::jsonb, now(), 20000)`,
      [`sbx-${m}`, JSON.stringify({ suite: m })],
    );
    await h.pool.query(
      `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
       SELECT $1, n, 'RUNNING', 'RUNNING', 'padding ' || repeat('x', 200), now() FROM generate_series(1, 20000) n`,
      [`sbx-${m}`],
    );
    const url = new URL(`${other.base}/v1/events?follow=true&after=0&label=suite=${m}`);
    // A reader with a 4 KiB receive window that reads nothing for 8 s, then everything it can.
    const reader = spawn('python3', [
      '-c',
      STALLED_READER,
      url.hostname,
      url.port,
      `${url.pathname}${url.search}`,
      BOB,
    ]);
    let out = '';
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => reader.once('exit', r));
    await eventually(async () => other.hub.streams === 1, 5000, 20);
    const openedAt = Date.now();
    await eventually(async () => other.hub.streams === 0, 7000, 50);
    // Cut while the reader was still asleep: the server gave up on it, it did not leave.
    expect(Date.now() - openedAt).toBeLessThan(7000);
    await exited;
    const count = Number(out.trim());
    expect(count).toBeLessThan(20_000);
  });
});

/** argv: host port path token. Prints how many events it got before the stream ended. */
const STALLED_READER = `
import socket, sys, time
host, port, path, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, port))
s.sendall(f"GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\nAuthorization: Bearer {token}\\r\\n\\r\\n".encode())
time.sleep(8)
got = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except OSError:
    pass
print(got.count(b"\\nevent: sandbox.running\\n"))
`;

describe('the LISTEN connection', () => {
  it('does not hang on a database that never answers: subscribe() and close() come back in bounded time', async () => {
    // Accepts connections and never says a word: a blackholed database, as far as a client can tell.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const listener = new EventListener({
      connection: { host: '127.0.0.1', port, user: 'x', database: 'x', connectionTimeoutMillis: 500 },
      backoff: { minMs: 100, maxMs: 200 },
    });
    try {
      const t0 = Date.now();
      const unsubscribe = await listener.subscribe(() => {});
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(listener.isListening).toBe(false);
      expect(sockets.length).toBeGreaterThan(0);
      // It keeps retrying meanwhile (backoff), so a close can find a connect under way.
      await eventually(async () => sockets.length > 1, 5000, 50);
      const t1 = Date.now();
      await listener.close();
      expect(Date.now() - t1).toBeLessThan(3000);
      unsubscribe();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
