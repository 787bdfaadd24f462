// Full lifecycles per second at each concurrency: `c` clients each running create (→ RUNNING) →
// exec `true` → DELETE → DESTROYED (seen in the registry) back to back for a fixed time (or
// count), then the floor at the same concurrency: bare workflows with as many no-op activities as
// a lifecycle schedules (--activities), served by a worker inside this process. Reports the rates,
// their ratio and p50/p99 of each step. Lifecycles and floor alternate which goes first per level.
// Usage: npm run bench:throughput -- [--levels 1,8,32,128] [--seconds 15] [--count 0] [--activities 4]
//          [--role user|admin]
//   --count N: N lifecycles (and N bare workflows) per level instead of --seconds.
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it.
import { Failures } from './lib/api';
import { numberList, parseParams } from './lib/args';
import { heading, log, table, times } from './lib/output';
import { closedLoop } from './lib/pool';
import { StateWatcher } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, destroyAndWait, warmUp } from './lib/sandboxes';
import { rate, ratio, summarize, type Summary } from './lib/stats';
import { connectClient, startFloor, type Floor } from './lib/temporal';
import type { Stack } from './lib/stack';

const USAGE =
  'usage: npm run bench:throughput -- [--levels 1,8,32,128] [--seconds 15] [--count 0] [--activities 4] ' +
  '[--role user|admin]';
const params = parseParams(USAGE, { levels: '1,8,32,128', seconds: 15, count: 0, activities: 4, role: 'user' });
const levels = numberList(params.levels);
const STEPS = ['create', 'exec', 'delete', 'destroyed', 'lifecycle'] as const;
type StepName = (typeof STEPS)[number];
const STEP_LABELS: Record<StepName, string> = {
  create: 'create → RUNNING',
  exec: 'exec `true`',
  delete: 'DELETE (202)',
  destroyed: 'DELETE → DESTROYED',
  lifecycle: 'whole lifecycle',
};

interface Level {
  concurrency: number;
  lifecycles: {
    completed: number;
    wallMs: number;
    perSecond: number;
    steps: Record<StepName, Summary>;
    failures: Record<string, number>;
  };
  floor: { completed: number; wallMs: number; perSecond: number; ms: Summary; failures: number };
  ratio: number;
}

async function lifecycles(stack: Stack, watcher: StateWatcher, c: number) {
  const failures = new Failures();
  const ms: Record<StepName, number[]> = { create: [], exec: [], delete: [], destroyed: [], lifecycle: [] };
  let completed = 0;
  const wallMs = await closedLoop(c, params.seconds * 1000, params.count, async () => {
    const started = performance.now();
    const created = await createRunning(stack.api, { ttlSeconds: 600, labels: { bench: 'throughput' } }, failures);
    if (!created) return;
    ms.create.push(created.ms);
    const exec = await stack.api
      .post<{ exitCode: number }>(`/v1/sandboxes/${created.id}/exec`, { command: ['true'] })
      .catch((err: Error) => err);
    if (exec instanceof Error || exec.status !== 200 || exec.body.exitCode !== 0) failures.add('exec', exec);
    else ms.exec.push(exec.ms);
    const destroyed = await destroyAndWait(stack.api, watcher, created.id, failures);
    if (!destroyed) return;
    ms.delete.push(destroyed.deleteMs);
    ms.destroyed.push(destroyed.destroyedMs);
    ms.lifecycle.push(performance.now() - started);
    completed += 1;
  });
  const steps = Object.fromEntries(STEPS.map((s) => [s, summarize(ms[s])])) as Record<StepName, Summary>;
  return {
    completed,
    wallMs: Math.round(wallMs),
    perSecond: rate(completed, wallMs),
    steps,
    failures: failures.counts,
  };
}

async function floorRun(floor: Floor, c: number) {
  const ms: number[] = [];
  let failures = 0;
  const wallMs = await closedLoop(c, params.seconds * 1000, params.count, async () => {
    try {
      ms.push(await floor.run(params.activities));
    } catch {
      failures += 1;
    }
  });
  return {
    completed: ms.length,
    wallMs: Math.round(wallMs),
    perSecond: rate(ms.length, wallMs),
    ms: summarize(ms),
    failures,
  };
}

await runBench('throughput', params, async (bench) => {
  const stack = await bench.startStack({ sandboxes: Math.max(...levels), role: params.role as 'user' | 'admin' });
  const watcher = new StateWatcher(stack.registry);
  bench.onCleanup(() => watcher.stop());
  const { client, close } = await connectClient(stack);
  bench.onCleanup(close);
  const floor = await startFloor(stack, client);
  bench.onCleanup(() => floor.stop());
  await warmUp(stack.api, watcher);
  await floor.run(params.activities); // the floor's worker warms up too

  const results: Level[] = [];
  for (const [i, c] of levels.entries()) {
    let lc: Level['lifecycles'];
    let fl: Level['floor'];
    if (i % 2 === 0) {
      lc = await lifecycles(stack, watcher, c);
      fl = await floorRun(floor, c);
    } else {
      fl = await floorRun(floor, c);
      lc = await lifecycles(stack, watcher, c);
    }
    results.push({ concurrency: c, lifecycles: lc, floor: fl, ratio: ratio(lc.perSecond, fl.perSecond) });
    log(`concurrency ${c}: ${lc.perSecond} lifecycles/s, floor ${fl.perSecond} workflows/s`);
  }

  const per = params.count ? `${params.count} per level` : `${params.seconds} s per level`;
  heading(`throughput: lifecycles vs bare ${params.activities}-activity workflows (${per})`);
  table(
    [
      'concurrency',
      'lifecycles',
      'lifecycles/s',
      'bare workflows/s',
      'lifecycles / bare',
      'refused (retried) / failed',
    ],
    results.map((r) => [
      r.concurrency,
      r.lifecycles.completed,
      r.lifecycles.perSecond,
      r.floor.perSecond,
      times(r.ratio),
      [
        ...Object.entries(r.lifecycles.failures).map(([k, n]) => `${k} ×${n}`),
        ...(r.floor.failures ? [`bare workflow ×${r.floor.failures}`] : []),
      ].join('; ') || '0',
    ]),
  );
  heading('step latencies, ms (p50 / p99)');
  table(
    ['concurrency', ...STEPS.map((s) => STEP_LABELS[s]), `bare workflow (${params.activities} activities)`],
    results.map((r) => [
      r.concurrency,
      ...STEPS.map((s) => `${fmt(r.lifecycles.steps[s].p50)} / ${fmt(r.lifecycles.steps[s].p99)}`),
      `${fmt(r.floor.ms.p50)} / ${fmt(r.floor.ms.p99)}`,
    ]),
  );
  return { levels: results };
});

function fmt(v: number): string {
  return Number.isFinite(v) ? String(Math.round(v)) : '–';
}
