// The floor under create → RUNNING: the same server's cost of a bare workflow with 2 no-op
// activities (worker inside this process, task queue of its own), create → RUNNING through the
// REST API, and the process driver alone (create + waitReady on a state dir of its own) —
// interleaved round by round (the order rotates) so drift in the machine's load hits all three.
// Each round runs `concurrency` of one kind at once, then of the next. Sandboxes are destroyed
// after each round's kind, untimed (DELETE, then until the registry says DESTROYED).
// Usage: npm run bench:floor -- [iterations=10] [--concurrency 1] [--activities 2] [--warmup 2] [--role user|admin]
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it and to the driver.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createProcessHypervisor } from '../hypervisors/process/driver';
import { Failures } from './lib/api';
import { parseParams } from './lib/args';
import { heading, log, SUMMARY_HEADERS, summaryCells, table, times } from './lib/output';
import { abort } from './lib/pool';
import { StateWatcher } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, destroyAndWait, warmUp } from './lib/sandboxes';
import { ratio, summarize } from './lib/stats';
import { connectClient, startFloor } from './lib/temporal';
import { driverSettings } from '../config/drivers';

const USAGE =
  'usage: npm run bench:floor -- [iterations=10] [--concurrency 1] [--activities 2] [--warmup 2] [--role user|admin]';
const params = parseParams(USAGE, { iterations: 10, concurrency: 1, activities: 2, warmup: 2, role: 'user' }, [
  'iterations',
]);

type Kind = 'bare' | 'api' | 'driver';
const KINDS: Kind[] = ['bare', 'api', 'driver'];
const LABELS: Record<Kind, string> = {
  bare: `bare workflow, ${params.activities} no-op activities: start → result`,
  api: 'API: POST /v1/sandboxes → RUNNING',
  driver: 'process driver: create + waitReady',
};

await runBench('floor', params, async (bench) => {
  const c = params.concurrency;
  const stack = await bench.startStack({ sandboxes: c, role: params.role as 'user' | 'admin' });
  const watcher = new StateWatcher(stack.registry);
  bench.onCleanup(() => watcher.stop());
  const { client, close } = await connectClient(stack);
  bench.onCleanup(close);
  const floor = await startFloor(stack, client);
  bench.onCleanup(() => floor.stop());
  // The driver as the service makes it (same HOURGLASS_PROCESS_* settings), on its own state dir.
  const driverDir = mkdtempSync(path.join(os.tmpdir(), 'hgb-floor-driver-'));
  bench.onCleanup(() => rmSync(driverDir, { recursive: true, force: true }));
  const driver = createProcessHypervisor(driverSettings('process', process.env), driverDir);
  bench.onCleanup(async () => {
    for (const vm of await driver.list()) await driver.destroy(vm.id).catch(() => {});
    await driver.close?.();
  });
  await warmUp(stack.api, watcher);

  const failures = new Failures();
  const samples: Record<Kind, number[]> = { bare: [], api: [], driver: [] };
  const one: Record<Kind, () => Promise<{ ms: number; cleanup?: () => Promise<unknown> } | undefined>> = {
    bare: async () => ({ ms: await floor.run(params.activities) }),
    api: async () => {
      const created = await createRunning(stack.api, { ttlSeconds: 600, labels: { bench: 'floor' } }, failures);
      return created && { ms: created.ms, cleanup: () => destroyAndWait(stack.api, watcher, created.id, failures) };
    },
    driver: async () => {
      if (abort.requested) throw new Error('the bench is stopping');
      const id = `sbx-floor-${randomBytes(6).toString('hex')}`;
      const started = performance.now();
      await driver.create({ id, labels: {} });
      await driver.waitReady(id, 60_000);
      return { ms: performance.now() - started, cleanup: () => driver.destroy(id) };
    },
  };
  const rounds = params.warmup + params.iterations;
  for (let r = 0; r < rounds && !abort.requested; r++) {
    const order = KINDS.map((_, i) => KINDS[(i + r) % KINDS.length]!);
    for (const kind of order) {
      const done = await Promise.all(
        Array.from({ length: c }, () =>
          one[kind]().catch((err: Error) => {
            failures.add(kind, err);
            return undefined;
          }),
        ),
      );
      if (r >= params.warmup) for (const d of done) if (d) samples[kind].push(d.ms);
      await Promise.all(done.map((d) => d?.cleanup?.().catch((err: Error) => failures.add(`${kind} cleanup`, err))));
    }
    log(`round ${r + 1}/${rounds}${r < params.warmup ? ' (warm-up)' : ''} done`);
  }

  const s = { bare: summarize(samples.bare), api: summarize(samples.api), driver: summarize(samples.driver) };
  const ratios = {
    apiOverBare: {
      p50: ratio(s.api.p50, s.bare.p50),
      p95: ratio(s.api.p95, s.bare.p95),
      p99: ratio(s.api.p99, s.bare.p99),
    },
    apiOverDriver: {
      p50: ratio(s.api.p50, s.driver.p50),
      p95: ratio(s.api.p95, s.driver.p95),
      p99: ratio(s.api.p99, s.driver.p99),
    },
  };
  heading(`floor: ${params.iterations} rounds × ${c} at a time (after ${params.warmup} warm-up rounds), ms`);
  table(
    ['kind', ...SUMMARY_HEADERS, 'mean'],
    KINDS.map((k) => [LABELS[k], ...summaryCells(s[k]), s[k].mean]),
  );
  table(
    ['ratio', 'p50', 'p95', 'p99'],
    [
      ['API / bare workflow', ...Object.values(ratios.apiOverBare).map(times)],
      ['API / driver', ...Object.values(ratios.apiOverDriver).map(times)],
    ],
  );
  if (failures.total) {
    table(
      ['failure or refusal', 'count', 'example'],
      Object.entries(failures.counts).map(([k, n]) => [k, n, failures.examples[k] ?? '']),
    );
  }
  return { ms: s, ratios, failures: failures.counts, driver: driver.summary?.() };
});
