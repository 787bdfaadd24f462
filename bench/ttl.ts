// Leases ending on time under load: N sandboxes are created (creation time and rate reported),
// then each is renewed so that its expiresAt lands evenly within one window (default 60 s) that
// starts ~10 s after the last renewal; then, until all are DESTROYED, how late each transition
// came after its expiresAt: EXPIRED, DESTROYING, DESTROYED (the registry's events, whose `at` the
// workflow writes when it makes the transition), DESTROYED as first seen in the registry by a
// 200 ms poll, and the last destroy relative to the last expiry.
// Renewals only extend (expiresAt = max(expiresAt, now + ttl)), so each sandbox is created with a
// lease that lasts about until creation is done (from the rate so far; the first --concurrency
// get --hold seconds), and a keeper renews any that would end sooner (counted).
// Usage: npm run bench:ttl -- [n=200] [--concurrency 32] [--window 60] [--lead 10] [--hold 20] [--timeout 600] [--role user|admin]
//   --timeout: seconds after the last expiry to wait for stragglers.
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it.
import { Failures, type ApiClient } from './lib/api';
import { parseParams } from './lib/args';
import { heading, line, log, SUMMARY_HEADERS, summaryCells, table } from './lib/output';
import { abort, forEachLimit } from './lib/pool';
import { eventsOf, StateWatcher, stateCounts, statesOf } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, warmUp } from './lib/sandboxes';
import { sleep } from './lib/stack';
import { rate, summarize } from './lib/stats';

const USAGE = 'usage: npm run bench:ttl -- [n=200] [--concurrency 32] [--window 60] [--lead 10] [--hold 20] [--timeout 600] [--role user|admin]';
const params = parseParams(USAGE, { n: 200, concurrency: 32, window: 60, lead: 10, hold: 20, timeout: 600, role: 'user' }, ['n']);

/** Renews by update; the new expiresAt (ms), or undefined when the renewal failed (counted). */
async function renew(api: ApiClient, id: string, ttlSeconds: number, failures: Failures, step: string): Promise<{ expiresAt: number; ms: number; capped: boolean } | undefined> {
  const res = await api.post(`/v1/sandboxes/${id}/lease/renew`, { ttlSeconds }).catch((err: Error) => err);
  if (res instanceof Error || res.status !== 200) {
    failures.add(step, res);
    return undefined;
  }
  return { expiresAt: Date.parse(res.body.expiresAt), ms: res.ms, capped: res.body.capped === true };
}

await runBench('ttl', params, async (bench) => {
  const { n, concurrency: c } = params;
  const stack = await bench.startStack({ sandboxes: n, role: params.role as 'user' | 'admin' });
  const watcher = new StateWatcher(stack.registry, 200);
  bench.onCleanup(() => watcher.stop());
  await warmUp(stack.api, watcher);
  const failures = new Failures();
  const expiresAt = new Map<string, number>();

  // 1. Create. Each lease is made to last about until creation ends (estimated from the rate so
  // far), so the window can start soon after; a keeper extends any that would end before.
  let createdCount = 0;
  const createStarted = performance.now();
  const leaseS = () => {
    if (createdCount < c) return params.hold; // no rate to go by yet
    const elapsedS = (performance.now() - createStarted) / 1000;
    return Math.ceil((n - createdCount) / (createdCount / elapsedS)) + 15;
  };
  let keptAlive = 0;
  let keeping = true;
  const keeper = (async () => {
    while (keeping && !abort.requested) {
      // Below every lease leaseS() gives (≥ 15 s), above a renewal's latency under load.
      const soon = [...expiresAt].filter(([, at]) => at - Date.now() < 8_000).map(([id]) => id);
      await forEachLimit(soon, 4, async (id) => {
        const r = await renew(stack.api, id, leaseS(), failures, 'keep-alive renew');
        if (r) expiresAt.set(id, r.expiresAt);
        keptAlive += 1;
      });
      await sleep(1000);
    }
  })();
  const createMs: number[] = [];
  await forEachLimit([...Array(n).keys()], c, async () => {
    const created = await createRunning(stack.api, { ttlSeconds: leaseS(), labels: { bench: 'ttl' } }, failures);
    if (!created) return;
    createdCount += 1;
    createMs.push(created.ms);
    expiresAt.set(created.id, Date.parse(created.expiresAt!));
  });
  const createWallMs = performance.now() - createStarted;
  keeping = false;
  await keeper;
  const ids = [...expiresAt.keys()];
  if (!ids.length) throw new Error(`no sandbox was created: ${JSON.stringify(failures.examples)}`);
  log(`created ${ids.length}/${n} in ${(createWallMs / 1000).toFixed(1)} s (${keptAlive} keep-alive renewals)`);

  // 2. How long a pass of renewals takes: C no-op renewals at once (ttl 1 s never shortens a lease).
  const probeStarted = performance.now();
  await forEachLimit(ids.slice(0, c), c, async (id) => void (await renew(stack.api, id, 1, failures, 'probe renew')));
  const passEstimateMs = Math.ceil(ids.length / c) * (performance.now() - probeStarted) * 1.5 + 1000;
  const windowMs = params.window * 1000;
  const windowStart = Math.max(Date.now() + passEstimateMs + params.lead * 1000, Math.max(...expiresAt.values()) + 1000);
  const target = new Map(ids.map((id, i) => [id, windowStart + ((i + 0.5) * windowMs) / ids.length]));
  log(`renewing ${ids.length} leases to land in [${new Date(windowStart).toISOString()}, +${params.window} s] (pass estimated at ${(passEstimateMs / 1000).toFixed(1)} s)`);

  // 3. The renewal pass: each lease set to its own target, to the second (ttlSeconds is whole).
  const renewMs: number[] = [];
  let capped = 0;
  let lastRenewal = 0;
  const renewStarted = performance.now();
  await forEachLimit(ids, c, async (id) => {
    const r = await renew(stack.api, id, Math.max(1, Math.round((target.get(id)! - Date.now()) / 1000)), failures, 'renew');
    lastRenewal = Date.now();
    if (!r) return;
    renewMs.push(r.ms);
    if (r.capped) capped += 1;
    expiresAt.set(id, r.expiresAt);
  });
  const renewWallMs = performance.now() - renewStarted;
  const expiries = [...expiresAt.values()];
  const firstExpiry = Math.min(...expiries);
  const lastExpiry = Math.max(...expiries);
  const offTarget = ids.filter((id) => Math.abs(expiresAt.get(id)! - target.get(id)!) > 1000).length;
  log(`renewed in ${(renewWallMs / 1000).toFixed(1)} s; first expiry ${((firstExpiry - lastRenewal) / 1000).toFixed(1)} s after the last renewal`);

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
      log(`${open} not yet DESTROYED; ${JSON.stringify(await stateCounts(stack.registry, 'ttl'))} (first expiry in ${toFirst} s)`);
    }
    await sleep(500);
  }
  await sleep(400); // the watcher's last poll

  // 5. Lateness of each transition against the sandbox's own expiresAt.
  const events = await eventsOf(stack.registry, ids);
  const late = { EXPIRED: [] as number[], DESTROYING: [] as number[], DESTROYED: [] as number[], observed: [] as number[] };
  const destroyedAt: number[] = [];
  const reached = new Map<string, Set<string>>();
  for (const e of events) {
    reached.set(e.id, (reached.get(e.id) ?? new Set()).add(e.to));
    if (e.to === 'EXPIRED' || e.to === 'DESTROYING' || e.to === 'DESTROYED') late[e.to].push(e.at - expiresAt.get(e.id)!);
    if (e.to === 'DESTROYED') destroyedAt.push(e.at);
  }
  for (const id of ids) {
    const seen = watcher.firstSeen.get(id)?.get('DESTROYED');
    if (seen !== undefined) late.observed.push(seen - expiresAt.get(id)!);
  }
  const finalStates = await statesOf(stack.registry, ids);
  const stragglers = ids.filter((id) => finalStates.get(id) !== 'DESTROYED').map((id) => ({ id, state: finalStates.get(id) ?? 'no row' }));
  const notByExpiry = ids.filter((id) => reached.get(id)?.has('DESTROYED') && !reached.get(id)?.has('EXPIRED')).length;
  const lastDestroyAfterLastExpiryMs = destroyedAt.length ? Math.max(...destroyedAt) - lastExpiry : NaN;

  const s = {
    create: summarize(createMs),
    renew: summarize(renewMs),
    lateness: { EXPIRED: summarize(late.EXPIRED), DESTROYING: summarize(late.DESTROYING), DESTROYED: summarize(late.DESTROYED), destroyedObserved: summarize(late.observed) },
  };
  heading(`ttl: ${ids.length} leases ending within ${params.window} s`);
  table(
    ['phase', 'n', 'wall s', 'per s', 'p50 ms', 'p99 ms', 'notes'],
    [
      ['create → RUNNING', ids.length, createWallMs / 1000, rate(ids.length, createWallMs), s.create.p50, s.create.p99, `${c} at a time; ${keptAlive} keep-alive renewals meanwhile`],
      ['renewal pass (update)', renewMs.length, renewWallMs / 1000, rate(renewMs.length, renewWallMs), s.renew.p50, s.renew.p99, `${capped} capped; ${offTarget} more than 1 s off target`],
    ],
  );
  line(
    `window: first expiry ${((firstExpiry - lastRenewal) / 1000).toFixed(1)} s after the last renewal, last one ${((lastExpiry - firstExpiry) / 1000).toFixed(1)} s after the first\n`,
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
  line(`last DESTROYED ${(lastDestroyAfterLastExpiryMs / 1000).toFixed(1)} s after the last expiresAt; ${stragglers.length} not DESTROYED ${params.timeout} s after it; ${notByExpiry} destroyed without EXPIRED\n`);
  if (failures.total) table(['failure or refusal', 'count', 'example'], Object.entries(failures.counts).map(([k, v]) => [k, v, failures.examples[k] ?? '']));
  return {
    created: ids.length,
    createWallMs: Math.round(createWallMs),
    createPerSecond: rate(ids.length, createWallMs),
    keepAliveRenewals: keptAlive,
    renewWallMs: Math.round(renewWallMs),
    window: { leadMs: firstExpiry - lastRenewal, spanMs: lastExpiry - firstExpiry, offTarget, capped },
    ms: s,
    lastDestroyAfterLastExpiryMs,
    notByExpiry,
    stragglers: { count: stragglers.length, first: stragglers.slice(0, 20) },
    failures: failures.counts,
  };
});
