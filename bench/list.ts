// List at registry scale: the list endpoint (and get) among N rows of the bench's owner and as
// many of another owner's, as p50/p95/p99 through the API, one call at a time, the kinds
// interleaved. The rows are SEEDED straight into the registry (DESTROYED sandboxes with their
// labels, as a registry holds after N lifecycles), since creating N real sandboxes would take
// N / ~6 s here: the figure is the read path (auth, validation, the query and its indexes, JSON),
// not the write path. Real live sandboxes: bench:scale.
// Usage: npm run bench:list -- [n=10000] [--samples 200] [--live 20]
//   --live: real sandboxes created (and destroyed) beside the seeded rows, so a state filter
//   has something to find.
import { cursorOfPage, Failures, type ApiResult } from './lib/api';
import { parseParams } from './lib/args';
import { heading, log, SUMMARY_HEADERS, summaryCells, table } from './lib/output';
import { forEachLimit } from './lib/pool';
import { openRegistryForSeeding, StateWatcher } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, warmUp } from './lib/sandboxes';
import { summarize } from './lib/stats';

const USAGE = 'usage: npm run bench:list -- [n=10000] [--samples 200] [--live 20]';
const params = parseParams(USAGE, { n: 10_000, samples: 200, live: 20 }, ['n']);
const TEAMS = 20; // label team=t0…t19, so a label filter matches 1 row in 20

await runBench('list', params, async (bench) => {
  const { n } = params;
  const stack = await bench.startStack({ sandboxes: params.live + 10 });
  const watcher = new StateWatcher(stack.registry);
  bench.onCleanup(() => watcher.stop());
  await warmUp(stack.api, watcher);
  const failures = new Failures();

  // 1. Seed: N DESTROYED rows of the bench's owner and N of another, with their events.
  const seeding = openRegistryForSeeding(stack.stateDir, stack.ports.postgres);
  bench.onCleanup(() => seeding.end());
  const seeded = performance.now();
  for (const owner of ['bench', 'other']) {
    await seeding.query(
      `WITH rows AS (
         INSERT INTO sandboxes
           (id, owner, driver, state, labels, created_at, max_expires_at, destroy_reason, seq, updated_at)
         SELECT format('sbx-seed-%s-%s', $1::text, g), $1, 'process', 'DESTROYED',
                jsonb_build_object('bench', 'list', 'team', 't' || (g % ${TEAMS})),
                now() - make_interval(secs => g), now(), 'seeded', 6, now()
         FROM generate_series(1, $2::int) AS g
         RETURNING id, created_at
       )
       INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
       SELECT id, 6, 'DESTROYING', 'DESTROYED', 'seeded', created_at FROM rows`,
      [owner, n],
    );
  }
  await seeding.query('ANALYZE sandboxes');
  log(`seeded ${2 * n} rows (${n} per owner) in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);

  // 2. A few real sandboxes beside them.
  const live: string[] = [];
  await forEachLimit([...Array(params.live).keys()], 8, async () => {
    const created = await createRunning(
      stack.api,
      { ttlSeconds: 3600, labels: { bench: 'list', team: 'live' } },
      failures,
    );
    if (created) live.push(created.id);
  });
  log(`${live.length} live sandboxes`);

  // 3. One call at a time, the kinds interleaved.
  const deep = await cursorOfPage(stack.api, '/v1/sandboxes?limit=50', Math.floor(n / 50 / 2));
  const calls: Record<string, (i: number) => string> = {
    'first page (limit 50)': () => '/v1/sandboxes?limit=50',
    [`page ${Math.floor(n / 50 / 2) + 1} (limit 50, by cursor)`]: () =>
      `/v1/sandboxes?limit=50&cursor=${encodeURIComponent(deep ?? '')}`,
    'state=RUNNING (the few live ones)': () => '/v1/sandboxes?limit=50&state=RUNNING',
    'state=DESTROYED': () => '/v1/sandboxes?limit=50&state=DESTROYED',
    [`label team=tK (1 row in ${TEAMS})`]: (i) => `/v1/sandboxes?limit=50&label=team%3Dt${i % TEAMS}`,
    'limit 500': () => '/v1/sandboxes?limit=500',
    'get one': (i) => `/v1/sandboxes/sbx-seed-bench-${1 + ((i * 7919) % n)}`,
  };
  const ms: Record<string, number[]> = Object.fromEntries(Object.keys(calls).map((k) => [k, []]));
  for (let i = 0; i < params.samples; i++) {
    for (const [name, path] of Object.entries(calls)) {
      const res: ApiResult | Error = await stack.api.get(path(i)).catch((e: Error) => e);
      if (res instanceof Error || res.status !== 200) failures.add(name, res);
      else ms[name]!.push(res.ms);
    }
  }
  // Another owner's rows never show: a spot check on a page of 500.
  const leaked = (
    await stack.api.get<{ items?: { owner: string }[] } | undefined>('/v1/sandboxes?limit=500')
  ).body?.items?.filter((s) => s.owner !== 'bench').length;

  await Promise.all(live.map((id) => stack.api.delete(`/v1/sandboxes/${id}`)));
  const latency = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, summarize(v)]));
  heading(`list among ${n} rows of the owner (${2 * n} in the registry), one call at a time, ms`);
  table(
    ['call', ...SUMMARY_HEADERS],
    Object.entries(latency).map(([k, s]) => [k, ...summaryCells(s)]),
  );
  if (failures.total) {
    table(
      ['failure', 'count', 'example'],
      Object.entries(failures.counts).map(([k, v]) => [k, v, failures.examples[k] ?? '']),
    );
  }
  return {
    rowsPerOwner: n,
    rowsTotal: 2 * n,
    live: live.length,
    ms: latency,
    otherOwnersRowsSeen: leaked,
    failures: failures.counts,
  };
});
