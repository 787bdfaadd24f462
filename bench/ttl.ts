// Leases ending on time under load: N sandboxes are created, each with the ttl that makes its
// lease end at its own point of one window (default 60 s) that starts once creation should be
// done (N / --rate seconds, plus --lead); then, until all are DESTROYED, how late each transition
// came after its expiresAt: EXPIRED, DESTROYING, DESTROYED (the registry's events, whose `at` the
// workflow writes when it makes the transition), DESTROYED as first seen in the registry by a
// 200 ms poll, and the last destroy relative to the last expiry; then, from a sample of
// histories, EXPIRED's lateness split into its parts (bench/lib/lease-end.ts). No renewals: the
// window holds only the expiries (a lease starts at RUNNING, so each ends its create's latency
// after target).
// Usage: npm run bench:ttl -- [n=200] [--concurrency 32] [--window 60] [--rate 6] [--lead 10] [--timeout 600]
//          [--role user|admin]
//   --rate: creates per second expected (sets the window's start); --timeout: seconds after the
//   last expiry to wait for stragglers.
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it.
import { Failures } from './lib/api';
import { parseParams } from './lib/args';
import { quantileBound, scrapedHistogram } from './lib/metrics';
import { heading, line, log, SUMMARY_HEADERS, summaryCells, table } from './lib/output';
import { abort, forEachLimit } from './lib/pool';
import { eventsOf, StateWatcher, stateCounts, statesOf } from './lib/registry';
import { leaseEndParts } from './lib/lease-end';
import { runBench } from './lib/run';
import { createRunning, warmUp } from './lib/sandboxes';
import { sleep } from './lib/stack';
import { connectClient } from './lib/temporal';
import { rate, summarize } from './lib/stats';

const USAGE =
  'usage: npm run bench:ttl -- [n=200] [--concurrency 32] [--window 60] [--rate 6] [--lead 10] [--timeout 600] ' +
  '[--role user|admin]';
const SAMPLE = 100; // histories read to split EXPIRED's lateness into its parts
const params = parseParams(
  USAGE,
  { n: 200, concurrency: 32, window: 60, rate: 6, lead: 10, timeout: 600, role: 'user' },
  ['n'],
);

await runBench('ttl', params, async (bench) => {
  const { n, concurrency: c } = params;
  const stack = await bench.startStack({ sandboxes: n, role: params.role as 'user' | 'admin' });
  const watcher = new StateWatcher(stack.registry, 200);
  bench.onCleanup(() => watcher.stop());
  await warmUp(stack.api, watcher);
  const failures = new Failures();
  const expiresAt = new Map<string, number>();

  // 1. Create, each with the ttl that ends its lease at its point of the window.
  const createStarted = performance.now();
  const windowMs = params.window * 1000;
  const windowStart = Date.now() + (n / params.rate + params.lead) * 1000;
  const createMs: number[] = [];
  let lastCreated = 0;
  await forEachLimit([...Array(n).keys()], c, async (i) => {
    const target = windowStart + ((i + 0.5) * windowMs) / n;
    const ttlSeconds = Math.max(1, Math.round((target - Date.now()) / 1000));
    const created = await createRunning(stack.api, { ttlSeconds, labels: { bench: 'ttl' } }, failures);
    if (!created) return;
    lastCreated = Date.now();
    createMs.push(created.ms);
    expiresAt.set(created.id, Date.parse(created.expiresAt!));
  });
  const createWallMs = performance.now() - createStarted;
  const ids = [...expiresAt.keys()];
  if (!ids.length) throw new Error(`no sandbox was created: ${JSON.stringify(failures.examples)}`);
  const expiries = [...expiresAt.values()];
  const firstExpiry = Math.min(...expiries);
  const lastExpiry = Math.max(...expiries);
  log(
    `created ${ids.length}/${n} in ${(createWallMs / 1000).toFixed(1)} s; ` +
      `first lease ends ${((firstExpiry - lastCreated) / 1000).toFixed(1)} s after the last create`,
  );

  // 4. Until every one is DESTROYED (or the timeout): progress every 10 s.
  watcher.track(ids);
  const deadline = lastExpiry + params.timeout * 1000;
  let lastProgress = 0;
  for (;;) {
    const states = await statesOf(stack.registry, ids);
    const open = ids.filter((id) => states.get(id) !== 'DESTROYED').length;
    if (!open || Date.now() > deadline || abort.requested) break;
    if (Date.now() - lastProgress >= 10_000) {
      lastProgress = Date.now();
      const toFirst = ((firstExpiry - Date.now()) / 1000).toFixed(0);
      log(
        `${open} not yet DESTROYED; ${JSON.stringify(await stateCounts(stack.registry, 'ttl'))} ` +
          `(first expiry in ${toFirst} s)`,
      );
    }
    await sleep(500);
  }
  await sleep(400); // the watcher's last poll

  // 5. Lateness of each transition against the sandbox's own expiresAt.
  const events = await eventsOf(stack.registry, ids);
  const late = {
    EXPIRED: [] as number[],
    DESTROYING: [] as number[],
    DESTROYED: [] as number[],
    observed: [] as number[],
  };
  const destroyedAt: number[] = [];
  const reached = new Map<string, Set<string>>();
  for (const e of events) {
    reached.set(e.id, (reached.get(e.id) ?? new Set()).add(e.to));
    if (e.to === 'EXPIRED' || e.to === 'DESTROYING' || e.to === 'DESTROYED') {
      late[e.to].push(e.at - expiresAt.get(e.id)!);
    }
    if (e.to === 'DESTROYED') destroyedAt.push(e.at);
  }
  for (const id of ids) {
    const seen = watcher.firstSeen.get(id)?.get('DESTROYED');
    if (seen !== undefined) late.observed.push(seen - expiresAt.get(id)!);
  }
  const finalStates = await statesOf(stack.registry, ids);
  const stragglers = ids
    .filter((id) => finalStates.get(id) !== 'DESTROYED')
    .map((id) => ({ id, state: finalStates.get(id) ?? 'no row' }));
  const notByExpiry = ids.filter((id) => reached.get(id)?.has('DESTROYED') && !reached.get(id)?.has('EXPIRED')).length;
  const lastDestroyAfterLastExpiryMs = destroyedAt.length ? Math.max(...destroyedAt) - lastExpiry : NaN;

  const s = {
    create: summarize(createMs),
    lateness: {
      EXPIRED: summarize(late.EXPIRED),
      DESTROYING: summarize(late.DESTROYING),
      DESTROYED: summarize(late.DESTROYED),
      destroyedObserved: summarize(late.observed),
    },
  };
  heading(`ttl: ${ids.length} leases ending within ${params.window} s`);
  table(
    ['phase', 'n', 'wall s', 'per s', 'p50 ms', 'p99 ms', 'notes'],
    [
      [
        'create → RUNNING',
        ids.length,
        createWallMs / 1000,
        rate(ids.length, createWallMs),
        s.create.p50,
        s.create.p99,
        `${c} at a time`,
      ],
    ],
  );
  line(
    `window: first expiry ${((firstExpiry - lastCreated) / 1000).toFixed(1)} s after the last create ` +
      '(negative: leases ended while creates ran), ' +
      `last one ${((lastExpiry - firstExpiry) / 1000).toFixed(1)} s after the first\n`,
  );
  heading('lateness after expiresAt, ms');
  table(
    ['transition', ...SUMMARY_HEADERS],
    [
      ['EXPIRED (event)', ...summaryCells(s.lateness.EXPIRED)],
      ['DESTROYING (event)', ...summaryCells(s.lateness.DESTROYING)],
      ['DESTROYED (event)', ...summaryCells(s.lateness.DESTROYED)],
      ['DESTROYED (first seen in the registry, 200 ms poll)', ...summaryCells(s.lateness.destroyedObserved)],
    ],
  );
  line(
    `last DESTROYED ${(lastDestroyAfterLastExpiryMs / 1000).toFixed(1)} s after the last expiresAt; ` +
      `${stragglers.length} not DESTROYED ${params.timeout} s after it; ${notByExpiry} destroyed without EXPIRED\n`,
  );
  // The same promise as the service reports it (README "Metrics"), read from the API's /metrics.
  const scraped = await stack.admin.get<string>('/metrics');
  const lateness = scrapedHistogram(String(scraped.body), 'hourglass_lease_lateness_seconds');
  line(
    `hourglass_lease_lateness_seconds (scraped): count ${lateness.count}, ` +
      `mean ${lateness.count ? Math.round((lateness.sum / lateness.count) * 1000) : '-'} ms, ` +
      `p50 ≤ ${quantileBound(lateness, 0.5)} s, p99 ≤ ${quantileBound(lateness, 0.99)} s (bucket bounds)\n`,
  );

  // 6. Where EXPIRED's lateness comes from, in a sample of histories spread over the window.
  const { client, close } = await connectClient(stack);
  const parts = { timerSetLateMs: [] as number[], timerFiredLateMs: [] as number[], taskLateMs: [] as number[] };
  try {
    const step = Math.max(1, Math.floor(ids.length / SAMPLE));
    for (let i = 0; i < ids.length; i += step) {
      const p = await leaseEndParts(client, ids[i]!, expiresAt.get(ids[i]!)!);
      if (p) for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k].push(p[k]);
    }
  } finally {
    await close();
  }
  const split = {
    timerSetLate: summarize(parts.timerSetLateMs),
    timerFiredLate: summarize(parts.timerFiredLateMs),
    taskLate: summarize(parts.taskLateMs),
  };
  heading(`EXPIRED's lateness, part by part (${parts.taskLateMs.length} histories), ms`);
  table(
    ['part', ...SUMMARY_HEADERS],
    [
      ['timer set late (its task completed after the lease began)', ...summaryCells(split.timerSetLate)],
      ['timer fired late (server)', ...summaryCells(split.timerFiredLate)],
      ['its workflow task started late (queue, worker)', ...summaryCells(split.taskLate)],
    ],
  );
  if (failures.total) {
    table(
      ['failure or refusal', 'count', 'example'],
      Object.entries(failures.counts).map(([k, v]) => [k, v, failures.examples[k] ?? '']),
    );
  }
  return {
    created: ids.length,
    createWallMs: Math.round(createWallMs),
    createPerSecond: rate(ids.length, createWallMs),
    window: { leadMs: firstExpiry - lastCreated, spanMs: lastExpiry - firstExpiry },
    ms: s,
    expiredParts: split,
    lastDestroyAfterLastExpiryMs,
    notByExpiry,
    stragglers: { count: stragglers.length, first: stragglers.slice(0, 20) },
    failures: failures.counts,
  };
});
