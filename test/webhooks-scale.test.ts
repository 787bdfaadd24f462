// Many quiet webhooks must not slow the one that has work: 200 idle subscriptions (their workflows
// waiting, on the same worker) and one active one. The active one's deliveries stay prompt, and the
// feed is read about once per event burst per worker — not once per idle wait per event, as when
// every NOTIFY woke every wait. Prints the latency figures (event committed → receiver got it).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWebhookWorkflow } from '../api/webhooks/workflow';
import { codecKeysOf } from '../codec/keys';
import { sealSecret } from '../codec/secret-box';
import { insertWebhook } from '../registry/webhooks';
import { webhookWorkflowId } from '../workflows/ids';
import { TEST_CODEC_KEY, eventually, startHarness, type Harness } from './support/harness';

const { PENDING_ACTIVITY_STATE_STARTED } = proto.temporal.api.enums.v1.PendingActivityState;
const ALICE = 'alice-token-0123456789abcdef';
// Owners of this file only: the registry is shared by the whole run, and the per-owner webhook cap
// must not see these 200 subscriptions from another file's 'alice'.
const RUN = randomBytes(4).toString('hex');
const OWNER = `scale-${RUN}`;
const IDLE = 200;
const SANDBOXES = 10;

let h: Harness;
let base: string;
const got: { at: number; body: { id: string; type: string; at: string; sandboxId: string } }[] = [];
const receiver = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    got.push({ at: Date.now(), body: JSON.parse(raw) });
    res.writeHead(204).end();
  });
});

beforeAll(async () => {
  h = await startHarness({
    tokens: [{ owner: OWNER, role: 'user', token: ALICE }],
    webhooks: { allowPrivate: true, retryForSeconds: 60 },
  });
  await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  // Deleted, so nothing later (a worker's start-up check of live webhooks) takes them up again.
  await h?.pool.query(`UPDATE webhooks SET deleted_at = now() WHERE owner LIKE $1`, [`%${RUN}%`]);
  await h?.close();
  await new Promise((r) => receiver.close(r));
});

/** Reads of sandbox_events (index and sequential scans) so far, as PostgreSQL's statistics count them. */
async function feedReads(): Promise<number> {
  const { rows } = await h.pool.query<{ n: string }>(
    `SELECT (COALESCE(idx_scan, 0) + seq_scan)::text AS n FROM pg_stat_user_tables WHERE relname = 'sandbox_events'`,
  );
  return Number(rows[0]!.n);
}

it(`${IDLE} idle webhooks do not hold back an active one's deliveries`, async () => {
  // The active one first: alice's idle ones below would fill her quota (the API's per-owner cap).
  const alice = h.apiAs(ALICE);
  const active = await alice('POST', '/v1/webhooks', {
    url: `${base}/active`,
    events: ['sandbox.running', 'sandbox.expired', 'sandbox.destroyed'],
  });
  expect(active.status).toBe(201);
  // Idle: half are alice's for a type that never comes here, half other owners' (writes straight to
  // the registry: the per-owner cap is the API's).
  const keys = codecKeysOf([TEST_CODEC_KEY], 'test');
  const ids = Array.from({ length: IDLE }, (_, i) => `whk_idle${i}x${Date.now()}`);
  for (let i = 0; i < IDLE; i += 20) {
    await Promise.all(
      ids.slice(i, i + 20).map(async (id, j) => {
        const w = await insertWebhook(h.pool, {
          id,
          owner: (i + j) % 2 ? OWNER : `idle-${RUN}-${i + j}`,
          allOwners: false,
          url: `${base}/idle`,
          events: ['sandbox.failed'],
          secret: sealSecret(keys, id, 'idle-secret-0123456789'),
        });
        await startWebhookWorkflow(h.client, h.taskQueue, w);
      }),
    );
  }
  // Every idle workflow is in its wait (an activity running on the worker).
  await eventually(async () => {
    for (let i = 0; i < IDLE; i += 25) {
      const described = await Promise.all(
        ids.slice(i, i + 25).map((id) => h.client.workflow.getHandle(webhookWorkflowId(id)).describe()),
      );
      const waiting = (d: (typeof described)[number]) =>
        d.raw.pendingActivities?.some((a) => a.state === PENDING_ACTIVITY_STATE_STARTED);
      if (!described.every(waiting)) return false;
    }
    return true;
  }, 60_000);

  await new Promise((r) => setTimeout(r, 1000)); // the active one's first wait is under way
  const readsBefore = await feedReads();

  for (let i = 0; i < SANDBOXES; i++) {
    expect((await alice('POST', '/v1/sandboxes', { ttlSeconds: 2 })).status).toBe(201);
  }
  const delivered = await eventually(async () => got.length >= SANDBOXES * 3 && got, 60_000);
  await new Promise((r) => setTimeout(r, 2000)); // backends flush their statistics within a second
  const reads = (await feedReads()) - readsBefore;

  const latencies = delivered.map((r) => r.at - Date.parse(r.body.at)).sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  const { rows } = await h.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM sandbox_events e JOIN sandboxes s ON s.id = e.sandbox_id WHERE s.owner = $1`,
    [OWNER],
  );
  console.log(
    `${IDLE} idle webhooks + 1 active: ${latencies.length} deliveries, latency (event → receiver) ` +
      `p50 ${pct(50)} ms, p95 ${pct(95)} ms, max ${pct(100)} ms; ${rows[0]!.n} events; ` +
      `sandbox_events reads during the burst: ${reads}`,
  );
  expect(new Set(delivered.map((r) => r.body.id)).size).toBe(delivered.length); // each once
  expect(got.every((r) => r.body.type !== 'sandbox.failed')).toBe(true);
  // Every NOTIFY waking every wait would be ≥ IDLE reads per event (70 events: 14,000 reads).
  expect(reads).toBeLessThan(rows[0]!.n * 20);
}, 180_000);
