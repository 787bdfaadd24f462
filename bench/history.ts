// History per step of one sandbox's life: how many events and bytes each step adds to the
// sandbox's workflow history, and of which types — create → RUNNING, renew by update (REST),
// renew by signal (Temporal client), exec, delete → DESTROYED — and the whole lifecycle.
// Usage: npm run bench:history -- [--repeat 3] [--role user|admin]
//   --repeat: renewals by update, renewals by signal and execs, each measured this many times.
// Starts its own stack (embedded Temporal and PostgreSQL on free ports, its own state dir);
// HOURGLASS_* settings in the environment pass through to it.
import { Failures } from './lib/api';
import { parseParams } from './lib/args';
import { historyOf, quiesce, type Event } from './lib/history';
import { heading, line, log, table } from './lib/output';
import { StateWatcher } from './lib/registry';
import { runBench } from './lib/run';
import { createRunning, destroyAndWait, warmUp } from './lib/sandboxes';
import { connectClient } from './lib/temporal';
import { sandboxWorkflowId } from '../workflows/ids';

const USAGE = 'usage: npm run bench:history -- [--repeat 3] [--role user|admin]';
const params = parseParams(USAGE, { repeat: 3, role: 'user' }, ['repeat']);

interface Step {
  step: string;
  events: number;
  bytes: number;
  types: Record<string, number>;
}

await runBench('history', params, async (bench) => {
  const stack = await bench.startStack({ role: params.role as 'user' | 'admin' });
  const watcher = new StateWatcher(stack.registry);
  bench.onCleanup(() => watcher.stop());
  const { client, close } = await connectClient(stack);
  bench.onCleanup(close);
  await warmUp(stack.api, watcher);

  const failures = new Failures();
  const created = await createRunning(stack.api, { ttlSeconds: 600, labels: { bench: 'history' } }, failures);
  if (!created) throw new Error(`create failed: ${JSON.stringify(failures.examples)}`);
  const workflowId = sandboxWorkflowId(created.id);
  const steps: Step[] = [];
  let seen = 0;
  let all: Event[] = [];
  let runs = 1;
  // Every step ends once the workflow is idle again; what the history gained since is the step's.
  const measure = async (step: string) => {
    await quiesce(client, workflowId);
    const h = await historyOf(client, workflowId);
    all = h.events;
    runs = h.runs;
    const added = all.slice(seen);
    seen = all.length;
    const types: Record<string, number> = {};
    for (const e of added) types[e.type] = (types[e.type] ?? 0) + 1;
    steps.push({ step, events: added.length, bytes: added.reduce((a, e) => a + e.bytes, 0), types });
    log(`${step}: ${added.length} events`);
  };
  const expect = (what: string, res: { status: number; body: unknown }, status: number) => {
    if (res.status !== status) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  };

  await measure('create → RUNNING');
  for (let i = 0; i < params.repeat; i++) {
    expect('renew', await stack.api.post(`/v1/sandboxes/${created.id}/lease/renew`, { ttlSeconds: 900 + i }), 200);
    await measure('renew by update (REST)');
  }
  for (let i = 0; i < params.repeat; i++) {
    // The signal's name is the workflow's public contract (README: a `renewLease` signal).
    await client.workflow.getHandle(workflowId).signal('renewLease', { ttlSeconds: 1200 + i });
    await measure('renew by signal (Temporal client)');
  }
  for (let i = 0; i < params.repeat; i++) {
    expect('exec', await stack.api.post(`/v1/sandboxes/${created.id}/exec`, { command: ['true'] }), 200);
    await measure('exec `true`');
  }
  if (!(await destroyAndWait(stack.api, watcher, created.id, failures))) {
    throw new Error(`destroy failed: ${JSON.stringify(failures.examples)}`);
  }
  await client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => {});
  await measure('delete → DESTROYED (workflow closed)');

  // One row per kind of step: the mean over its repeats (they rarely differ).
  const kinds = [...new Set(steps.map((s) => s.step))];
  const perKind = kinds.map((step) => {
    const of = steps.filter((s) => s.step === step);
    const mean = (f: (s: Step) => number) => Math.round((of.reduce((a, s) => a + f(s), 0) / of.length) * 10) / 10;
    const types: Record<string, number> = {};
    for (const s of of) for (const [t, n] of Object.entries(s.types)) types[t] = (types[t] ?? 0) + n / of.length;
    return {
      step,
      times: of.length,
      events: mean((s) => s.events),
      bytes: mean((s) => s.bytes),
      eventsEach: of.map((s) => s.events),
      types,
    };
  });
  const total = { events: all.length, bytes: all.reduce((a, e) => a + e.bytes, 0), runs };
  const typeList = (types: Record<string, number>) =>
    Object.entries(types)
      .map(([t, n]) => (n === 1 ? t : `${t} ×${Math.round(n * 10) / 10}`))
      .join(', ');

  heading(`history per step of one sandbox (workflow ${workflowId}, ${runs} run${runs > 1 ? 's' : ''})`);
  table(
    ['step', 'times', 'events', 'bytes', 'event types (per time)'],
    [
      ...perKind.map((k) => [k.step, k.times, k.events, k.bytes, typeList(k.types)]),
      ['whole lifecycle', 1, total.events, total.bytes, ''],
    ],
  );
  // The lifecycle a client most often runs: create, one renewal, one exec, delete.
  const eventsOf = (prefix: string) => perKind.find((k) => k.step.startsWith(prefix))?.events ?? 0;
  const typical = eventsOf('create') + eventsOf('renew by update') + eventsOf('exec') + eventsOf('delete');
  line(`create + 1 renewal (update) + 1 exec + delete: ${typical} events\n`);
  return { sandboxId: created.id, steps: perKind, total, typicalLifecycleEvents: typical };
});
