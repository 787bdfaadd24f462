// Metrics as an operator scrapes them: the API's /metrics (admins only when tokens are on) moves
// when a sandbox is created, runs commands and expires; every metric the README lists is there;
// a worker process's own metrics port shows Hourglass's and the Temporal SDK's metrics.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { UNMATCHED_ROUTE } from '../metrics/api';
import { watchRegistryPool } from '../metrics/registry-pool';
import { countSandboxesIn } from '../metrics/sandbox-counts';
import { startMetricsServer } from '../metrics/worker-server';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';
import { REPO, freePort, waitUntil } from './support/service-run';

const ADMIN = randomBytes(16).toString('hex');
const USER = randomBytes(16).toString('hex');

/** One sample line of the Prometheus text format: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Sends bytes as they are (fetch would normalise the request line) and returns the raw answer. */
function rawRequest(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = net.connect(Number(port), hostname, () => socket.write(bytes));
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue; // comments (# HELP, # TYPE) and blank lines
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `labels`. */
function valueOf(text: string, name: string, labels: Record<string, string> = {}): number {
  return parseSamples(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Names declared with `# TYPE` in a scrape. */
const declaredNames = (text: string) => [...text.matchAll(/^# TYPE (\S+) \w+$/gm)].map((m) => m[1]!);

/** Every hourglass_ metric named in the README's Metrics section. */
function documentedNames(): string[] {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = /^## Metrics\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no "## Metrics" section');
  const names = [...section.matchAll(/^\| `(hourglass_[a-z_]+)`/gm)].map((m) => m[1]!);
  return [...new Set(names)];
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: 'ops', role: 'admin', token: ADMIN },
      { owner: 'alice', role: 'user', token: USER },
    ],
  });
  // The service wires this in worker/runtime.ts where it builds the API; the harness builds its own.
  countSandboxesIn(h.pool);
  watchRegistryPool(h.pool);
});
afterAll(() => h?.close());

async function scrape(token: string | null = ADMIN): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${h.baseUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}
const metrics = async () => (await scrape()).text;
const state = async (id: string) => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body;

describe('GET /metrics on the API', () => {
  it('needs an admin token when tokens are configured: 401 without one, 403 for a user, 200 for an admin', async () => {
    const none = await scrape(null);
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text)).toMatchObject({ error: { code: 'unauthorized' } });
    const user = await scrape(USER);
    expect(user.status).toBe(403);
    expect(JSON.parse(user.text).error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/admin/) });
    const admin = await scrape(ADMIN);
    expect(admin.status).toBe(200);
    expect(admin.type).toMatch(/^text\/plain;.*version=0\.0\.4/);
    expect(admin.text).toMatch(/^process_cpu_user_seconds_total \d/m); // Node's default metrics too
  });

  it('serves every metric the README lists, and no hourglass_ metric the README does not', async () => {
    const documented = documentedNames();
    expect(documented.length).toBeGreaterThanOrEqual(12);
    const declared = declaredNames(await metrics()).filter((n) => n.startsWith('hourglass_'));
    expect(declared.sort()).toEqual([...documented].sort());
  });

  it('moves as a sandbox runs commands and expires: create→RUNNING, execs, lateness, destroy, requests', async () => {
    const before = await metrics();
    const created = await h.api<SandboxStatus>('POST', '/v1/sandboxes', {
      ttlSeconds: 3,
      labels: { suite: 'metrics' },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const exec = (command: string[], timeoutSeconds?: number) =>
      h.api('POST', `/v1/sandboxes/${id}/exec`, { command, timeoutSeconds });
    expect((await exec(['true'])).body).toMatchObject({ exitCode: 0 });
    expect((await exec(['sh', '-c', 'exit 3'])).body).toMatchObject({ exitCode: 3 });
    expect((await exec(['sleep', '10'], 1)).body).toMatchObject({ timedOut: true });

    // The gauge is read from the registry at scrape time.
    const running = await metrics();
    expect(valueOf(running, 'hourglass_sandboxes', { state: 'RUNNING', driver: 'process' })).toBeGreaterThanOrEqual(1);
    // The pool has served those requests: its connections are there, in use or idle.
    const pooled = ['in_use', 'idle'].map((state) => valueOf(running, 'hourglass_registry_pool_clients', { state }));
    expect(pooled[0]! + pooled[1]!).toBeGreaterThanOrEqual(1);
    const poolStates = parseSamples(running)
      .filter((sample) => sample.name === 'hourglass_registry_pool_clients')
      .map((sample) => sample.labels.state);
    expect(poolStates.sort()).toEqual(['idle', 'in_use', 'waiting']);

    await eventually(async () => (await state(id)).state === 'DESTROYED', 20_000);
    const expired = await state(id);
    expect(expired.destroyReason).toBe('lease expired');
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    const onProcess = { driver: 'process' };

    // The promise as a number: one more lease ended, destroyed within seconds of expiresAt.
    expect(delta('hourglass_lease_lateness_seconds_count', onProcess)).toBe(1);
    const lateness = delta('hourglass_lease_lateness_seconds_sum', onProcess);
    expect(lateness).toBeGreaterThanOrEqual(0);
    expect(lateness).toBeLessThan(5);
    expect(delta('hourglass_lease_lateness_seconds_bucket', { ...onProcess, le: '+Inf' })).toBe(1);

    expect(delta('hourglass_create_to_running_seconds_count', onProcess)).toBe(1);
    expect(delta('hourglass_create_to_running_seconds_sum', onProcess)).toBeGreaterThan(0);
    expect(delta('hourglass_destroy_duration_seconds_count', onProcess)).toBeGreaterThanOrEqual(1);
    expect(delta('hourglass_execs_total', { ...onProcess, outcome: 'ok' })).toBe(1);
    expect(delta('hourglass_execs_total', { ...onProcess, outcome: 'nonzero' })).toBe(1);
    expect(delta('hourglass_execs_total', { ...onProcess, outcome: 'timeout' })).toBe(1);
    expect(delta('hourglass_exec_duration_seconds_count', onProcess)).toBe(3);
    expect(delta('hourglass_exec_duration_seconds_sum', { ...onProcess, outcome: 'timeout' })).toBeGreaterThan(0.9);

    // Requests by route pattern and status, never by raw URL: the sandbox's id is in no label.
    const create = { method: 'POST', route: '/v1/sandboxes', status: '201' };
    expect(delta('hourglass_api_requests_total', create)).toBe(1);
    const execRoute = { method: 'POST', route: '/v1/sandboxes/:id/exec', status: '200' };
    expect(delta('hourglass_api_requests_total', execRoute)).toBe(3);
    expect(
      delta('hourglass_api_request_duration_seconds_count', { method: 'GET', route: '/v1/sandboxes/:id' }),
    ).toBeGreaterThanOrEqual(1);
    expect(after).not.toContain(id);
  });

  it('labels unknown routes and refusals as one route, and errors inside a router by their pattern', async () => {
    const before = await metrics();
    const unknown = `/v1/nothing-here-${randomBytes(4).toString('hex')}`;
    expect((await h.api('GET', unknown)).status).toBe(404);
    expect((await h.apiAs(undefined)('GET', '/v1/sandboxes')).status).toBe(401);
    expect((await h.api('GET', '/v1/sandboxes/sbx-doesnotexist0')).status).toBe(404);
    const after = await metrics();
    const delta = (labels: Record<string, string>) =>
      valueOf(after, 'hourglass_api_requests_total', labels) - valueOf(before, 'hourglass_api_requests_total', labels);
    expect(delta({ method: 'GET', route: UNMATCHED_ROUTE, status: '404' })).toBe(1);
    expect(delta({ method: 'GET', route: UNMATCHED_ROUTE, status: '401' })).toBe(1);
    // The 404 came out of the sandboxes router through the error handler: still its route's pattern.
    expect(delta({ method: 'GET', route: '/v1/sandboxes/:id', status: '404' })).toBe(1);
    expect(after).not.toContain(unknown);
  });

  it('counts driver errors by driver and operation (a create the process driver refuses)', async () => {
    const labels = { driver: 'process', operation: 'create' };
    const before = valueOf(await metrics(), 'hourglass_driver_errors_total', labels);
    const res = await h.api('POST', '/v1/sandboxes', { ttlSeconds: 60, template: 'no-such-template' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/no-such-template/);
    await eventually(async () => valueOf(await metrics(), 'hourglass_driver_errors_total', labels) === before + 1);
  });

  it('counts reaper runs and the drifts they fix, by kind', async () => {
    const before = await metrics();
    const orphan = await h.hypervisors.get('process').create({ id: `orphan-metrics-${Date.now()}`, labels: {} });
    const report = (await h.api('POST', '/v1/sandboxes/prune', { dryRun: false })).body;
    expect(report.items).toContainEqual(expect.objectContaining({ id: orphan.id, drift: 'orphan_vm' }));
    const after = await metrics();
    expect(
      valueOf(after, 'hourglass_reaper_runs_total', { dry_run: 'false' }) -
        valueOf(before, 'hourglass_reaper_runs_total', { dry_run: 'false' }),
    ).toBe(1);
    const fixed = (text: string) => valueOf(text, 'hourglass_reaper_drifts_fixed_total', { kind: 'orphan_vm' });
    expect(fixed(after) - fixed(before)).toBeGreaterThanOrEqual(1);
  });
});

describe('the worker metrics server', () => {
  it('serves GET /metrics only, in the same text as the API (in-process)', async () => {
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(server.url);
      expect(res.status).toBe(200);
      expect(declaredNames(await res.text())).toContain('hourglass_lease_lateness_seconds');
      const other = await fetch(server.url.replace('/metrics', '/v1/sandboxes'));
      expect(other.status).toBe(404);
      expect(await other.json()).toMatchObject({ error: { code: 'not_found' } });
      expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
      // A request target `new URL` cannot parse (Node's HTTP parser lets it through) is a 404, not a crash.
      const raw = await rawRequest(server.url, 'GET http://[/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      expect(raw).toMatch(/^HTTP\/1\.1 404/);
      expect((await fetch(server.url)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('`hourglass worker` with HOURGLASS_METRICS_PORT serves hourglass_ and the SDK’s temporal_ metrics', async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-metrics-worker-'));
    const port = await freePort();
    const taskQueue = `test-metrics-${randomBytes(4).toString('hex')}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      DATABASE_URL: inject('databaseUrl'),
      HOURGLASS_TASK_QUEUE: taskQueue,
      HOURGLASS_STATE_DIR: stateDir,
      HOURGLASS_METRICS_PORT: String(port),
      HOURGLASS_DRIVERS: 'process',
    };
    for (const name of ['NODE_OPTIONS', 'HOST', 'HOURGLASS_METRICS_HOST']) delete env[name];
    const child = spawn('setpriv', ['--pdeathsig=SIGTERM', '--', 'node', '--import', 'tsx', 'cli/main.ts', 'worker'], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const text = await waitUntil(
        'the worker metrics port shows the SDK metrics',
        async () => {
          if (child.exitCode !== null) throw new Error(`the worker exited:\n${output.slice(-3000)}`);
          const res = await fetch(`http://127.0.0.1:${port}/metrics`);
          const body = await res.text();
          return res.status === 200 && /^temporal_\w+(\{.*\})? \S+$/m.test(body) ? body : undefined;
        },
        90_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${output.slice(-3000)}`);
      });
      const names = new Set(parseSamples(text).map((s) => s.name));
      expect(declaredNames(text)).toContain('hourglass_lease_lateness_seconds');
      expect(names).toContain('temporal_worker_task_slots_available');
      // Prometheus's conventions: durations in seconds and named so, counters ending in _total.
      expect(names).toContain('temporal_request_latency_seconds_bucket');
      expect(names).toContain('temporal_request_total');
      // The SDK's and Hourglass's names never collide (a scrape with a name twice is rejected).
      const declared = declaredNames(text);
      expect(new Set(declared).size).toBe(declared.length);
      // The SDK's exporter answered (its text is fetched at scrape time).
      expect(text).not.toMatch(/Temporal SDK metrics unavailable/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await h.client.schedule
        .getHandle(`hourglass-reaper-${taskQueue}`)
        .delete()
        .catch(() => {});
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
