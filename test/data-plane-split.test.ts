// The data plane with the API and the worker as separate processes (`hourglass api`, `hourglass
// worker`), each with a state directory of its own, sharing only Temporal, PostgreSQL and the
// codec key: the API cannot read the worker's disk or processes, so the bytes of a streamed exec
// and of a file round trip must come through the registry.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SandboxStatus } from '../workflows/types';
import { expectedLines, mbPerSecond, numberedLines, openStream, seqsOf, stdoutOf } from './support/exec-sse';
import { TEST_CODEC_KEY } from './support/harness';
import { REPO, freePort, waitUntil } from './support/service-run';

const TOKEN = randomBytes(16).toString('hex');
const taskQueue = `test-split-${randomBytes(4).toString('hex')}`;
const children: { name: string; child: ChildProcess; output: () => string }[] = [];
const dirs: string[] = [];
let apiDir: string;
let workerDir: string;
let base: string;
const figures: string[] = [];

function start(name: 'api' | 'worker', stateDir: string, extra: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    DATABASE_URL: inject('databaseUrl'),
    HOURGLASS_TASK_QUEUE: taskQueue,
    HOURGLASS_STATE_DIR: stateDir,
    HOURGLASS_CODEC_KEY: TEST_CODEC_KEY,
    HOURGLASS_DRIVERS: 'process',
    HOURGLASS_REAPER_INTERVAL_SECONDS: '3600',
    LOG_LEVEL: 'warn',
    ...extra,
  };
  // Should this test process die, its children go too.
  const child = spawn(
    'setpriv',
    ['--pdeathsig=SIGTERM', '--', process.execPath, '--import', 'tsx', 'cli/main.ts', name],
    {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  children.push({ name, child, output: () => out });
  return child;
}

const api = async (method: string, p: string, body?: unknown) => {
  const res = await fetch(base + p, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped JSON, read field by field
  return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
};

/** Every path under `dir` whose name mentions `needle`. */
function entriesNaming(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.name.includes(needle)) found.push(p);
      if (e.isDirectory() && !e.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return found;
}

beforeAll(async () => {
  apiDir = mkdtempSync(path.join(os.tmpdir(), 'hg-split-api-'));
  workerDir = mkdtempSync(path.join(os.tmpdir(), 'hg-split-worker-'));
  dirs.push(apiDir, workerDir);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  start('worker', workerDir);
  start('api', apiDir, { PORT: String(port), HOURGLASS_API_TOKEN: TOKEN });
  await waitUntil(
    'the API process is healthy',
    async () => {
      for (const c of children) {
        if (c.child.exitCode !== null) throw new Error(`${c.name} exited:\n${c.output().slice(-3000)}`);
      }
      return (await fetch(`${base}/healthz`)).status === 200;
    },
    120_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${children.map((c) => `--- ${c.name}\n${c.output().slice(-2000)}`).join('\n')}`);
  });
}, 180_000);

afterAll(async () => {
  if (figures.length) console.log(`[data-plane-split] figures:\n${figures.map((f) => `  ${f}`).join('\n')}`);
  for (const { child } of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 40_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  // The worker's reaper schedule would outlive it on the shared server.
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  await new Client({ connection }).schedule
    .getHandle(`hourglass-reaper-${taskQueue}`)
    .delete()
    .catch(() => {});
  await connection.close();
}, 120_000);

describe('the API and the worker as separate processes, separate state directories', () => {
  it('streams an exec and round-trips a file through the API process', async () => {
    const created = await api('POST', '/v1/sandboxes', { ttlSeconds: 300, readyTimeoutSeconds: 120 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const sbx = created.body as SandboxStatus;
    try {
      // The sandbox lives on the worker's disk only.
      expect(entriesNaming(workerDir, sbx.id).length).toBeGreaterThan(0);
      expect(entriesNaming(apiDir, sbx.id)).toEqual([]);

      const t0 = Date.now();
      const s = await openStream(`${base}/v1/sandboxes/${sbx.id}/exec`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ command: numberedLines(2000), stream: true }),
      });
      expect(s.res.status).toBe(200);
      const messages = await s.untilEnd(60_000);
      const ms = Date.now() - t0;
      expect(messages[0]!.event).toBe('start');
      expect(messages.at(-1)!.event, messages.at(-1)!.data).toBe('exit');
      expect(stdoutOf(messages).toString()).toBe(expectedLines(2000));
      const seqs = seqsOf(messages);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));

      // Time to first byte across the processes: the command prints its clock (the same host's).
      const ttfb = await openStream(`${base}/v1/sandboxes/${sbx.id}/exec`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ command: ['sh', '-c', 'sleep 1; date +%s%N; sleep 0.2'], stream: true }),
      });
      const first = (await ttfb.until((m) => m.event === 'stdout', 30_000)).at(-1)!;
      const latency = Date.now() - Number(BigInt(JSON.parse(first.data).text.trim()) / 1_000_000n);
      await ttfb.untilEnd(30_000);
      figures.push(`split: 2,000 lines streamed in ${ms} ms; TTFB ${latency} ms`);
      expect(latency).toBeLessThan(15_000); // printed above; only a generous bound (CI load)

      const data = randomBytes(8 * 1000 * 1000);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const t1 = Date.now();
      const put = await fetch(`${base}/v1/sandboxes/${sbx.id}/files?path=split.bin`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: data,
      });
      const putMs = Date.now() - t1;
      expect(put.status).toBe(200);
      expect(await put.json()).toMatchObject({ size: data.length, sha256 });
      const t2 = Date.now();
      const got = await fetch(`${base}/v1/sandboxes/${sbx.id}/files?path=split.bin`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const bytes = Buffer.from(await got.arrayBuffer());
      const getMs = Date.now() - t2;
      expect(got.status).toBe(200);
      expect(got.headers.get('hourglass-sha256')).toBe(sha256);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(sha256);
      figures.push(
        `split: 8 MB upload ${mbPerSecond(data.length, putMs)} MB/s, download ${mbPerSecond(data.length, getMs)} MB/s`,
      );
      // Still nothing of it on the API's side.
      expect(entriesNaming(apiDir, sbx.id)).toEqual([]);
      expect(entriesNaming(apiDir, 'split.bin')).toEqual([]);
    } finally {
      await api('DELETE', `/v1/sandboxes/${sbx.id}`);
    }
  });
});
