// Owners at scale: N sandboxes spread over 4 owners (tokens, encrypted payloads, default limits),
// then what the ownership layer costs per call: list (the owner's page), get, exec, a 404 for
// another owner's id vs one for an id that never existed (no timing oracle), and bulk destroy.
// Usage: npx tsx bench/owners-scale.ts [sandboxes=1000] [concurrency=16]
// Starts its own service (embedded Temporal and PostgreSQL on free ports, its own state dir).
import { execSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../config/service';
import { startRuntime } from '../worker/runtime';

const n = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 16);
const owners = ['ana', 'ben', 'cho', 'dev'];
const token = (o: string) => `bench-token-of-${o}-0123456789`;
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hg-owners-bench-'));
const config = loadConfig({
  ...process.env,
  PORT: '0',
  TEMPORAL_PORT: '0',
  TEMPORAL_UI_PORT: '0',
  HOURGLASS_EMBEDDED_PG_PORT: String(55000 + Math.floor(Math.random() * 500)),
  HOURGLASS_STATE_DIR: stateDir,
  HOURGLASS_API_TOKENS: [...owners.map((o) => `${o}:user:${token(o)}`), `ops:admin:${token('ops')}`].join(','),
  HOURGLASS_PROCESS_DISK_MIB: process.env.HOURGLASS_PROCESS_DISK_MIB ?? '64',
  HOURGLASS_MAX_SANDBOXES_PER_OWNER: String(n),
});
const runtime = await startRuntime(
  { ...config, temporalAddress: undefined, databaseUrl: undefined },
  { worker: true, api: true, logger: pino({ level: 'silent' }) },
);
const base = runtime.apiUrl!;
const call = async <T = unknown>(who: string, method: string, p: string, body?: unknown) => {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token(who)}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
};
const timed = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
};
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
const row = (name: string, xs: number[]) => {
  const cells = [q(xs, 0.5), q(xs, 0.95), q(xs, 0.99), Math.max(...xs)].map((x) => x.toFixed(0));
  console.log(`| ${name} | ${xs.length} | ${cells.join(' | ')} |`);
};

await call('ana', 'POST', '/v1/sandboxes', { ttlSeconds: 5 }); // warm-up
const ids: Record<string, string[]> = Object.fromEntries(owners.map((o) => [o, []]));
const createMs: number[] = [];
let failures = 0;
const started = performance.now();
await pool([...Array(n).keys()], concurrency, async (i) => {
  const owner = owners[i % owners.length]!;
  const [ms, res] = await timed(() =>
    call<{ id: string; state: string }>(owner, 'POST', '/v1/sandboxes', {
      ttlSeconds: 3600,
      labels: { bench: 'owners' },
    }),
  );
  if (res.status !== 201 || res.body.state !== 'RUNNING') {
    failures += 1;
    return;
  }
  createMs.push(ms);
  ids[owner]!.push(res.body.id);
});
const createWall = (performance.now() - started) / 1000;

const list: number[] = [],
  get: number[] = [],
  exec: number[] = [],
  foreign: number[] = [],
  unknown: number[] = [];
for (let i = 0; i < 200; i++) {
  const owner = owners[i % owners.length]!;
  const other = owners[(i + 1) % owners.length]!;
  const mine = ids[owner]![i % ids[owner]!.length]!;
  const theirs = ids[other]![i % ids[other]!.length]!;
  list.push((await timed(() => call(owner, 'GET', '/v1/sandboxes?limit=50&label=bench=owners')))[0]);
  get.push((await timed(() => call(owner, 'GET', `/v1/sandboxes/${mine}`)))[0]);
  if (i < 100) {
    exec.push((await timed(() => call(owner, 'POST', `/v1/sandboxes/${mine}/exec`, { command: ['true'] })))[0]);
  }
  const [fms, f] = await timed(() => call(owner, 'GET', `/v1/sandboxes/${theirs}/events`));
  const [ums, u] = await timed(() =>
    call(owner, 'GET', `/v1/sandboxes/sbx-${i.toString(16).padStart(16, '0')}/events`),
  );
  if (f.status !== 404 || u.status !== 404) throw new Error(`expected 404s, got ${f.status} / ${u.status}`);
  foreign.push(fms);
  unknown.push(ums);
}
const page = await call<{ items: { owner: string }[] }>('ana', 'GET', '/v1/sandboxes?limit=500&label=bench=owners');
const leak = page.body.items.filter((s) => s.owner !== 'ana').length;

const destroyStarted = performance.now();
const destroyMs: number[] = [];
for (const owner of owners) {
  for (let i = 0; i < ids[owner]!.length; i += 1000) {
    destroyMs.push(
      (await timed(() => call(owner, 'POST', '/v1/sandboxes/destroy', { ids: ids[owner]!.slice(i, i + 1000) })))[0],
    );
  }
}
for (;;) {
  const open = await call<{ items: unknown[] }>(
    'ops',
    'GET',
    '/v1/sandboxes?limit=1&label=bench=owners&state=RUNNING,EXPIRED,DESTROYING',
  );
  if (!open.body.items.length) break;
  await new Promise((r) => setTimeout(r, 500));
}
const destroyWall = (performance.now() - destroyStarted) / 1000;

const commit = execSync('git rev-parse --short HEAD').toString().trim();
console.log(
  `\nowners at scale: ${n} sandboxes over ${owners.length} owners, ${concurrency} creates at a time, ` +
    `commit ${commit}, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`,
);
console.log(
  `create wall ${createWall.toFixed(1)} s (${(n / createWall).toFixed(1)}/s), failures ${failures}; ` +
    `all DESTROYED ${destroyWall.toFixed(1)} s after the bulk destroys began; ` +
    `another owner's sandboxes in a page: ${leak}\n`,
);
console.log('| call | n | p50 ms | p95 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- |');
row(`create → RUNNING (${concurrency} at a time)`, createMs);
row(`list own page (limit 50) with ${n} rows`, list);
row('get own sandbox', get);
row('exec `true` in own sandbox', exec);
row("404: another owner's sandbox", foreign);
row('404: an id that never existed', unknown);
row('bulk destroy call (own ids)', destroyMs);
console.log(
  JSON.stringify({
    bench: 'owners-scale',
    n,
    concurrency,
    commit,
    createWall,
    destroyWall,
    failures,
    leak,
    p50: {
      create: q(createMs, 0.5),
      list: q(list, 0.5),
      get: q(get, 0.5),
      exec: q(exec, 0.5),
      foreign: q(foreign, 0.5),
      unknown: q(unknown, 0.5),
    },
  }),
);
await runtime.stop();
process.exit(0);
