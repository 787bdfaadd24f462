// N live leases: how creating them slows down as they pile up (per 10 % of N), what each
// component then holds in memory (RSS and PSS from /proc: the Hourglass node process(es), the
// embedded Temporal and PostgreSQL, and the sandboxes' own processes), p50/p99 of list (first
// page and a deep one), get and renew among them, the wall time of a prune (the admin endpoint
// that runs the reaper now), and a bulk destroy of all: each call, then the time until every one
// is DESTROYED (progress every 10 s).
// Usage: npm run bench:scale -- [n=500] [--concurrency 32] [--samples 100] [--batch 1000] [--timeout 900]
//          [--role user|admin]
//   --batch: ids per bulk-destroy call (≤ 1000); --timeout: seconds to wait for all DESTROYED.
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it.
import { cursorOfPage, Failures, type ApiResult } from './lib/api';
import { parseParams } from './lib/args';
import { heading, line, log, SUMMARY_HEADERS, summaryCells, table } from './lib/output';
import { abort, forEachLimit } from './lib/pool';
import { memoryUsage } from './lib/processes';
import { StateWatcher, stateCounts } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, warmUp } from './lib/sandboxes';
import { sleep } from './lib/stack';
import { rate, summarize } from './lib/stats';

const USAGE =
  'usage: npm run bench:scale -- [n=500] [--concurrency 32] [--samples 100] [--batch 1000] [--timeout 900] ' +
  '[--role user|admin]';
const params = parseParams(USAGE, { n: 500, concurrency: 32, samples: 100, batch: 1000, timeout: 900, role: 'user' }, [
  'n',
]);
const LABEL = 'bench=scale';
const TTL = 6 * 3600; // outlives any run: every lease here ends by destroy

await runBench('scale', params, async (bench) => {
  const { n, concurrency: c } = params;
  const stack = await bench.startStack({ sandboxes: n, role: params.role as 'user' | 'admin' });
  const watcher = new StateWatcher(stack.registry);
  bench.onCleanup(() => watcher.stop());
  await warmUp(stack.api, watcher);
  watcher.stop();
  const failures = new Failures();

  // 1. Create N; completions are grouped per 10 % of N to show the slow-down.
  const ids: string[] = [];
  const done: { at: number; ms: number }[] = [];
  const started = performance.now();
  await forEachLimit([...Array(n).keys()], c, async () => {
    const created = await createRunning(stack.api, { ttlSeconds: TTL, labels: { bench: 'scale' } }, failures);
    if (!created) return;
    ids.push(created.id);
    done.push({ at: performance.now() - started, ms: created.ms });
    if (done.length % Math.max(1, Math.round(n / 10)) === 0) {
      log(`${done.length}/${n} RUNNING after ${(done[done.length - 1]!.at / 1000).toFixed(1)} s`);
    }
  });
  const createWallMs = performance.now() - started;
  if (!ids.length) throw new Error(`no sandbox was created: ${JSON.stringify(failures.examples)}`);
  const deciles = [...Array(10).keys()].map((d) => {
    const slice = done.slice(Math.floor((d * done.length) / 10), Math.floor(((d + 1) * done.length) / 10));
    const from = d === 0 ? 0 : (done[Math.floor((d * done.length) / 10) - 1]?.at ?? 0);
    const to = slice.at(-1)?.at ?? from;
    const s = summarize(slice.map((x) => x.ms));
    return {
      decile: `${d * 10}–${(d + 1) * 10} %`,
      count: slice.length,
      wallMs: Math.round(to - from),
      perSecond: rate(slice.length, to - from),
      p50: s.p50,
      p99: s.p99,
    };
  });

  // 2. Memory, once the creates have settled.
  await sleep(5000);
  const memory = memoryUsage(stack.stateDir, stack.leader.pid!);

  // 3. Latencies among N live sandboxes, one call at a time, the kinds interleaved.
  const deepCursor = await cursorOfPage(
    stack.api,
    `/v1/sandboxes?limit=50&label=${LABEL}`,
    Math.floor(ids.length / 50 / 2),
  );
  const calls: Record<string, { path: (i: number) => string; body?: unknown; ms: number[] }> = {
    'list: first page (limit 50)': { path: () => `/v1/sandboxes?limit=50&label=${LABEL}`, ms: [] },
    [`list: page ${Math.floor(ids.length / 50 / 2) + 1} (limit 50, by cursor)`]: {
      path: () =>
        `/v1/sandboxes?limit=50&label=${LABEL}${deepCursor ? `&cursor=${encodeURIComponent(deepCursor)}` : ''}`,
      ms: [],
    },
    get: { path: (i) => `/v1/sandboxes/${ids[(i * 7919) % ids.length]}`, ms: [] },
    'renew (update)': {
      path: (i) => `/v1/sandboxes/${ids[(i * 104729) % ids.length]}/lease/renew`,
      body: { ttlSeconds: TTL },
      ms: [],
    },
  };
  for (let i = 0; i < params.samples; i++) {
    for (const [name, call] of Object.entries(calls)) {
      const res: ApiResult | Error = await (
        call.body ? stack.api.post(call.path(i), call.body) : stack.api.get(call.path(i))
      ).catch((e: Error) => e);
      if (res instanceof Error || res.status !== 200) failures.add(name, res);
      else call.ms.push(res.ms);
    }
  }

  // 4. Prune: the reaper over every live sandbox, now.
  const prune = await stack.admin.post<{ count?: number; counts?: Record<string, number> } | undefined>(
    '/v1/sandboxes/prune',
    {},
  );
  if (prune.status !== 200) failures.add('prune', prune);
  log(`prune: ${prune.status} in ${Math.round(prune.ms)} ms: ${JSON.stringify(prune.body?.counts ?? prune.body)}`);

  // 5. Bulk destroy of all, then until every one is DESTROYED.
  const destroyStarted = performance.now();
  const destroyCalls: { ids: number; ms: number; failed: number }[] = [];
  for (let i = 0; i < ids.length; i += params.batch) {
    const batch = ids.slice(i, i + params.batch);
    const res = await stack.api.post<{ failed?: number } | undefined>('/v1/sandboxes/destroy', {
      ids: batch,
      reason: 'bench',
    });
    if (res.status !== 200) failures.add('bulk destroy', res);
    destroyCalls.push({ ids: batch.length, ms: Math.round(res.ms), failed: res.body?.failed ?? batch.length });
  }
  let allDestroyedMs = NaN;
  let lastCounts: Record<string, number> = {};
  let lastLog = performance.now();
  while (performance.now() - destroyStarted < params.timeout * 1000 && !abort.requested) {
    lastCounts = await stateCounts(stack.registry, 'scale');
    if (Object.keys(lastCounts).every((s) => s === 'DESTROYED')) {
      allDestroyedMs = performance.now() - destroyStarted;
      break;
    }
    if (performance.now() - lastLog >= 10_000) {
      lastLog = performance.now();
      log(
        `${((lastLog - destroyStarted) / 1000).toFixed(0)} s after the bulk destroy began: ` +
          `${JSON.stringify(lastCounts)}`,
      );
    }
    await sleep(250);
  }

  const latency = Object.fromEntries(Object.entries(calls).map(([name, call]) => [name, summarize(call.ms)]));
  const create = summarize(done.map((d) => d.ms));
  heading(`scale: ${ids.length} live sandboxes (${c} creates at a time)`);
  table(
    ['share of N', 'created', 'wall s', 'per s', 'create p50 ms', 'create p99 ms'],
    [
      ...deciles.map((d) => [d.decile, d.count, d.wallMs / 1000, d.perSecond, d.p50, d.p99]),
      ['all', ids.length, createWallMs / 1000, rate(ids.length, createWallMs), create.p50, create.p99],
    ],
  );
  heading(`memory with ${ids.length} live sandboxes`);
  const rows: (string | number)[][] = [];
  for (const [kind, u] of Object.entries(memory)) {
    rows.push([kind, u.processes, u.rssMiB, u.pssMiB]);
    if (u.each && u.each.length > 1) {
      for (const e of u.each) rows.push([`  ${e.pid} ${e.command.slice(0, 60)}`, 1, e.rssMiB, e.pssMiB]);
    }
  }
  table(['component', 'processes', 'RSS MiB', 'PSS MiB'], rows);
  line(`sandbox processes per sandbox: ${(memory.sandboxes.processes / Math.max(1, ids.length)).toFixed(2)}\n`);
  heading(`calls among ${ids.length} live sandboxes, one at a time, ms`);
  table(
    ['call', ...SUMMARY_HEADERS],
    [
      ...Object.entries(latency).map(([name, s]) => [name, ...summaryCells(s)]),
      ['prune (admin, runs the reaper)', 1, prune.ms, prune.ms, prune.ms, prune.ms],
    ],
  );
  heading('bulk destroy');
  table(
    ['call', 'ids', 'ms', 'failed'],
    destroyCalls.map((d, i) => [`POST /v1/sandboxes/destroy #${i + 1}`, d.ids, d.ms, d.failed]),
  );
  line(
    Number.isFinite(allDestroyedMs)
      ? `all ${ids.length} DESTROYED ${(allDestroyedMs / 1000).toFixed(1)} s after the first bulk destroy call began\n`
      : `not all DESTROYED after ${params.timeout} s: ${JSON.stringify(lastCounts)}\n`,
  );
  if (failures.total) {
    table(
      ['failure or refusal', 'count', 'example'],
      Object.entries(failures.counts).map(([k, v]) => [k, v, failures.examples[k] ?? '']),
    );
  }
  return {
    live: ids.length,
    create: { wallMs: Math.round(createWallMs), perSecond: rate(ids.length, createWallMs), ms: create, deciles },
    memory,
    sandboxProcessesPerSandbox: memory.sandboxes.processes / Math.max(1, ids.length),
    ms: latency,
    prune: { ms: Math.round(prune.ms), status: prune.status, count: prune.body?.count, counts: prune.body?.counts },
    bulkDestroy: { calls: destroyCalls, allDestroyedMs: Math.round(allDestroyedMs), finalCounts: lastCounts },
    failures: failures.counts,
  };
});
