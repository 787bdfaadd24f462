// Live events: commit → SSE delivery latency through a real stack (`hourglass dev`: its API, its
// event hub and LISTEN connection, its embedded PostgreSQL). N sandboxes' lifecycles (7 transitions
// each) are WRITTEN straight into the registry with the service's own statement
// (registry/sandboxes.ts recordTransitions), paced, so that each event's commit time is known here:
// latency = when a follower parsed the event − when its COMMIT returned (a hair under the truth:
// the commit happened a round trip earlier). Real sandboxes would add their create path's latency
// and hide the commit time. F followers read /v1/events?follow=true as the admin, with three kinds
// of filter; each one's stream is checked against the registry: misses, duplicates, order.
// Usage: npm run bench:events -- [n=1000] [--followers 20] [--rate 200]
import { randomBytes } from 'node:crypto';
import type { FeedEvent } from '../registry/event-feed';
import { recordTransitions } from '../registry/sandboxes';
import { SseClient } from './lib/sse';
import type { SandboxState } from '../workflows/states';
import type { SandboxStatus } from '../workflows/types';
import { parseParams } from './lib/args';
import { heading, line, log, SUMMARY_HEADERS, summaryCells, table } from './lib/output';
import { openRegistryForSeeding } from './lib/registry';
import { runBench } from './lib/run';
import { sleep } from './lib/stack';
import { summarize } from './lib/stats';

const USAGE = 'usage: npm run bench:events -- [n=1000] [--followers 20] [--rate 200]';
const params = parseParams(USAGE, { n: 1000, followers: 20, rate: 200 }, ['n']);
const LIFE: SandboxState[] = ['REQUESTED', 'PROVISIONING', 'BOOTING', 'RUNNING', 'EXPIRED', 'DESTROYING', 'DESTROYED'];
const TEAMS = 5;

interface Follower {
  kind: 'all' | 'label' | 'state';
  query: string;
  wants: (e: FeedEvent) => boolean;
  client: SseClient;
  got: { id: string; sandboxId: string; seq: number; at: number }[];
  done: Promise<void>;
}

await runBench('events', params, async (bench) => {
  const { n, rate } = params;
  const stack = await bench.startStack({ sandboxes: 10, role: 'admin' });
  const registry = openRegistryForSeeding(stack.stateDir, stack.ports.postgres);
  bench.onCleanup(() => registry.end());
  const run = randomBytes(3).toString('hex');
  // The stack's admin token: ApiClient keeps it to itself, and a stream needs a fetch of its own.
  const token = (stack.admin as unknown as { token: string }).token;
  const feedReads = async () =>
    Number(
      (
        await registry.query<{ n: string }>(
          `SELECT idx_scan::text AS n FROM pg_stat_user_indexes WHERE indexrelname = 'sandbox_events_id_idx'`,
        )
      ).rows[0]?.n ?? NaN,
    );

  // 1. Followers first (from now on: no Last-Event-ID), three kinds in turn.
  const followers: Follower[] = [];
  for (let i = 0; i < params.followers; i++) {
    const team = `t${i % TEAMS}`;
    const kinds = {
      all: { query: `label=run=${run}`, wants: () => true },
      label: { query: `label=run=${run}&label=team=${team}`, wants: (e: FeedEvent) => e.labels.team === team },
      state: {
        query: `label=run=${run}&state=RUNNING,DESTROYED`,
        wants: (e: FeedEvent) => /RUNNING|DESTROYED/.test(e.to),
      },
    } as const;
    const kind = (['all', 'label', 'state'] as const)[i % 3]!;
    const client = await SseClient.open(`${stack.admin.baseUrl}/v1/events?follow=true&${kinds[kind].query}`, {
      authorization: `Bearer ${token}`,
    });
    if (client.status !== 200) throw new Error(`follower ${i}: HTTP ${client.status}`);
    const f: Follower = { kind, ...kinds[kind], client, got: [], done: Promise.resolve() };
    f.done = (async () => {
      for (;;) {
        const m = await client.next(600_000).catch(() => null);
        if (!m) return;
        const e = JSON.parse(m.data) as FeedEvent;
        f.got.push({ id: e.id, sandboxId: e.sandboxId, seq: e.seq, at: performance.now() });
      }
    })();
    followers.push(f);
  }
  log(`${followers.length} followers connected`);

  await sleep(1000);
  const readsBefore = await feedReads();
  // 2. N lifecycles, paced at `rate` events/s overall; a sandbox's transitions in order.
  const committed = new Map<string, { start: number; end: number }>(); // `${sandboxId}/${seq}`
  const ids = Array.from({ length: n }, (_, i) => `sbx-ev${run}-${String(i).padStart(5, '0')}`);
  const total = n * LIFE.length;
  const started = performance.now();
  let written = 0;
  const next = new Array<number>(n).fill(0);
  // Round-robin over sandboxes in waves, like many lifecycles overlapping.
  for (let step = 0; step < LIFE.length; step++) {
    for (let i = 0; i < n; i++) {
      const due = started + (written / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const seq = ++next[i]!;
      const to = LIFE[step]!;
      const at = new Date().toISOString();
      const sandbox: SandboxStatus = {
        id: ids[i]!,
        owner: 'bench',
        state: to,
        driver: 'process',
        labels: { run, team: `t${i % TEAMS}` },
        createdAt: at,
        maxExpiresAt: at,
      };
      const t0 = performance.now();
      await recordTransitions(registry, [
        { sandboxId: ids[i]!, seq, from: step ? LIFE[step - 1]! : null, to, reason: 'bench', at, sandbox },
      ]);
      committed.set(`${ids[i]}/${seq}`, { start: t0, end: performance.now() });
      written++;
    }
    log(`${written}/${total} events written`);
  }
  const writeSeconds = (performance.now() - started) / 1000;

  // 3. Let the last ones arrive, then compare every stream with the registry.
  await sleep(3000);
  const reads = (await feedReads()) - readsBefore; // the hub's (and nothing else's) scans of the id index
  for (const f of followers) f.client.close();
  await Promise.all(followers.map((f) => f.done));
  const { rows } = await registry.query<{
    id: string;
    sandbox_id: string;
    seq: number;
    to_state: string;
    team: string;
  }>(
    `SELECT e.id::text AS id, e.sandbox_id, e.seq, e.to_state, s.labels->>'team' AS team
       FROM sandbox_events e JOIN sandboxes s ON s.id = e.sandbox_id WHERE s.labels->>'run' = $1 ORDER BY e.id`,
    [run],
  );
  const latencies: number[] = [];
  const fromWriteStart: number[] = [];
  let misses = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  const byKind: Record<string, number[]> = { all: [], label: [], state: [] };
  for (const f of followers) {
    const expected = rows
      .filter((r) => f.wants({ to: r.to_state, labels: { team: r.team } } as unknown as FeedEvent))
      .map((r) => r.id);
    const got = f.got.map((g) => g.id);
    const seen = new Set<string>();
    for (const id of got) {
      if (seen.has(id)) duplicates++;
      seen.add(id);
    }
    misses += expected.filter((id) => !seen.has(id)).length;
    for (let i = 1; i < got.length; i++) if (BigInt(got[i]!) <= BigInt(got[i - 1]!)) outOfOrder++;
    for (const g of f.got) {
      const c = committed.get(`${g.sandboxId}/${g.seq}`);
      if (!c) throw new Error(`follower got ${g.sandboxId}/${g.seq}, which the bench never wrote`);
      latencies.push(g.at - c.end);
      fromWriteStart.push(g.at - c.start);
      byKind[f.kind]!.push(g.at - c.end);
    }
  }
  const deliveries = followers.reduce((a, f) => a + f.got.length, 0);

  heading(`Live events: ${n} sandboxes × ${LIFE.length} transitions, ${followers.length} followers`);
  line(
    `${total} events written in ${writeSeconds.toFixed(1)} s (${(total / writeSeconds).toFixed(0)}/s, one ` +
      `transaction each); ${deliveries} deliveries; misses ${misses}, duplicates ${duplicates}, ` +
      `out of order ${outOfOrder}.`,
  );
  line(
    `Feed reads by the API while it ran (scans of sandbox_events_id_idx): ${reads} — ` +
      `${(reads / total).toFixed(2)} per event written, for ${followers.length} followers.`,
  );
  line('');
  const all = summarize(latencies);
  const upper = summarize(fromWriteStart);
  table(
    ['latency (ms)', ...SUMMARY_HEADERS],
    [
      ['COMMIT returned → follower parsed it', ...summaryCells(all)],
      ['write sent → follower parsed it', ...summaryCells(upper)],
      ...Object.entries(byKind).map(([k, xs]) => [`  followers: ${k}`, ...summaryCells(summarize(xs))]),
    ],
  );
  return {
    n,
    followers: followers.length,
    events: total,
    writeSeconds,
    deliveries,
    misses,
    duplicates,
    outOfOrder,
    feedReads: reads,
    latency: all,
    fromWriteStart: upper,
  };
});
