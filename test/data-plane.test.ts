// The agents' data plane through the real API, worker, Temporal and PostgreSQL, on the process
// driver (bubblewrap) and on qemu: streamed exec (order, completeness, reconnect with
// Last-Event-ID), a background command (stdin, polled, followed, killed, listed), destroy during a
// stream, a 50 MB file round trip, a directory as a tar, path escapes, 404s, 413, and owners.
// One sandbox per driver for everything but the destroy (a second one). Figures are printed.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRunningExecs } from '../api/data-plane-caps';
import { driverSettings } from '../config/drivers';
import { createQemuHypervisor } from '../hypervisors/qemu/driver';
import type { Hypervisor } from '../hypervisors/types';
import { recordExecStart } from '../registry/execs';
import { createTransfer, deleteTransfer } from '../registry/transfers';
import type { SandboxStatus } from '../workflows/types';
import {
  expectedLines,
  isTerminal,
  mbPerSecond,
  numberedLines,
  openStream,
  seqsOf,
  stdoutOf,
  type ExecStream,
} from './support/exec-sse';
import { eventually, startHarness, type Harness } from './support/harness';
import { ensureGuestImage, qemuEnv, vmStateDir } from './support/vm-drivers';

const ALICE = 'alice-data-plane-token-0123456789';
const BOB = 'bob-data-plane-token-0123456789ab';
const TOKENS = [
  { owner: 'dp-alice', role: 'user' as const, token: ALICE },
  { owner: 'dp-bob', role: 'user' as const, token: BOB },
];
type Driver = 'process' | 'qemu';
/** Both by default; DATA_PLANE_DRIVERS=process narrows a local run (the VM boots dominate it). */
const DRIVERS = (process.env.DATA_PLANE_DRIVERS?.split(',') ?? ['process', 'qemu']) as Driver[];
/** TCG boots and copies are slow on a shared 2-core runner. */
const VM_MS = 600_000;

let h: Harness;
let alice: Harness['api'];
let bob: Harness['api'];
const streams: ExecStream[] = [];
const figures: string[] = [];
/** Per driver: the sandbox most tests share, and one to destroy mid-stream (made at the start, in parallel). */
const sandboxes = new Map<Driver, { main: Promise<SandboxStatus>; doomed: Promise<SandboxStatus> }>();

beforeAll(async () => {
  const drivers: Record<string, Hypervisor> = {};
  if (DRIVERS.includes('qemu')) {
    await ensureGuestImage();
    drivers.qemu = createQemuHypervisor(driverSettings('qemu', qemuEnv()), await vmStateDir('hg-dp-q-'));
  }
  h = await startHarness({ tokens: TOKENS, drivers });
  [alice, bob] = [h.apiAs(ALICE), h.apiAs(BOB)];
  for (const driver of DRIVERS) {
    sandboxes.set(driver, { main: create(driver), doomed: create(driver) });
  }
}, VM_MS);

afterAll(async () => {
  for (const s of streams) s.close();
  if (figures.length) console.log(`[data-plane] figures:\n${figures.map((f) => `  ${f}`).join('\n')}`);
  for (const { main, doomed } of sandboxes.values()) {
    for (const p of [main, doomed]) {
      const sbx = await p.catch(() => undefined);
      if (sbx) await alice('DELETE', `/v1/sandboxes/${sbx.id}`);
    }
  }
  await h?.close();
}, VM_MS);

async function create(driver: Driver): Promise<SandboxStatus> {
  const res = await alice<SandboxStatus>('POST', '/v1/sandboxes', {
    driver,
    ttlSeconds: 1800,
    readyTimeoutSeconds: 300,
    labels: { suite: 'data-plane' },
  });
  if (res.status !== 201) throw new Error(`create on ${driver}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const url = (p: string) => h.baseUrl + p;
const auth = (token = ALICE) => ({ authorization: `Bearer ${token}` });

async function execStream(
  id: string,
  body: Record<string, unknown>,
  token = ALICE,
  headers: Record<string, string> = {},
): Promise<ExecStream> {
  const s = await openStream(url(`/v1/sandboxes/${id}/exec`), {
    method: 'POST',
    headers: { ...auth(token), 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ stream: true, ...body }),
  });
  streams.push(s);
  return s;
}

async function follow(id: string, execId: string, headers: Record<string, string> = {}, query = 'follow=true') {
  const s = await openStream(url(`/v1/sandboxes/${id}/execs/${execId}/output?${query}`), {
    headers: { ...auth(), ...headers },
  });
  streams.push(s);
  return s;
}

/** seqs 1..n with nothing missing or repeated. */
function expectGapless(seqs: number[], from = 1): void {
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => from + i));
}

async function putFile(id: string, path: string, body: Buffer | string, query = '', token = ALICE) {
  const res = await fetch(url(`/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}${query}`), {
    method: 'PUT',
    headers: { ...auth(token), 'content-type': 'application/octet-stream' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line
}

async function getFile(id: string, path: string, token = ALICE) {
  const res = await fetch(url(`/v1/sandboxes/${id}/files?path=${encodeURIComponent(path)}`), { headers: auth(token) });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes };
}

/** Names in a tar stream (ustar headers: name at 0, size in octal at 124, 512-byte blocks). */
function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const prefix = header.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
    names.push(prefix ? `${prefix}/${name}` : name);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

describe.each(DRIVERS)('the data plane on %s', (driver) => {
  let sbx: SandboxStatus;
  /** The workspace as the sandbox sees it (/work, /root): commands' working directory may differ. */
  let ws: string;
  beforeAll(async () => {
    sbx = await sandboxes.get(driver)!.main;
    expect(sbx.state).toBe('RUNNING');
    const listed = await alice('GET', `/v1/sandboxes/${sbx.id}/files/list`);
    expect(listed.status).toBe(200);
    ws = listed.body.path;
  }, VM_MS);

  it(
    'streams 10,000 numbered lines complete and in order, start first and exit last',
    async () => {
      const s = await execStream(sbx.id, { command: numberedLines(10_000) });
      expect(s.res.status).toBe(200);
      expect(s.res.headers.get('content-type')).toBe('text/event-stream');
      const execId = s.res.headers.get('hourglass-exec-id')!;
      expect(execId).toBeTruthy();
      const messages = await s.untilEnd(VM_MS);
      expect(messages[0]).toMatchObject({ event: 'start' });
      expect(JSON.parse(messages[0]!.data)).toEqual({ execId, sandboxId: sbx.id });
      expect(messages.filter(isTerminal)).toHaveLength(1);
      const end = messages.at(-1)!;
      expect(end.event, end.data).toBe('exit');
      expect(JSON.parse(end.data)).toMatchObject({ execId, exitCode: 0, timedOut: false });
      expect(await s.next(5000)).toBeNull(); // the server ended the stream
      expectGapless(seqsOf(messages));
      expect(stdoutOf(messages).toString()).toBe(expectedLines(10_000));

      const rec = await alice('GET', `/v1/sandboxes/${sbx.id}/execs/${execId}`);
      expect(rec.status).toBe(200);
      expect(rec.body).toMatchObject({ execId, mode: 'stream', state: 'exited', exitCode: 0 });
      // The JSON page of the same output: the same bytes, `finished` on the last page.
      const page = await alice('GET', `/v1/sandboxes/${sbx.id}/execs/${execId}/output?after=0&limit=1000`);
      expect(page.status).toBe(200);
      expect(page.body.items[0]).toMatchObject({ seq: 1, stream: 'stdout' });
    },
    VM_MS,
  );

  it(
    'reconnects with Last-Event-ID mid-stream: the rest, with no gap and no duplicate',
    async () => {
      const lines = 3000;
      const s = await execStream(sbx.id, { command: numberedLines(lines, 300, '0.3') });
      const execId = s.res.headers.get('hourglass-exec-id')!;
      const first = await s.until((m) => m.event === 'stdout' && seqsOf([m])[0]! >= 3, VM_MS);
      s.close(); // the client drops; the command runs on
      const lastId = first.filter((m) => m.id !== undefined).at(-1)!.id!;
      const rest = await follow(sbx.id, execId, { 'last-event-id': lastId });
      expect(rest.res.status).toBe(200);
      const more = await rest.untilEnd(VM_MS);
      expect(more[0]!.event).not.toBe('start');
      expect(more.at(-1)!.event, more.at(-1)!.data).toBe('exit');
      const seqs = [...seqsOf(first), ...seqsOf(more)];
      expectGapless(seqs);
      expect(stdoutOf([...first, ...more]).toString()).toBe(expectedLines(lines));
      // `after=` does the same as the header; past the end there is only the end.
      const tail = await follow(sbx.id, execId, {}, `follow=true&after=${seqs.at(-1)}`);
      const end = await tail.untilEnd(30_000);
      expect(end.map((m) => m.event)).toEqual(['exit']);
    },
    VM_MS,
  );

  it('a retry with the same Idempotency-Key follows the same exec (Accept: text/event-stream streams)', async () => {
    const key = `dp-${randomBytes(6).toString('hex')}`;
    const command = ['cat', '/proc/sys/kernel/random/uuid'];
    const first = await execStream(sbx.id, { command }, ALICE, { 'idempotency-key': key });
    const one = await first.untilEnd(60_000);
    const retry = await openStream(url(`/v1/sandboxes/${sbx.id}/exec`), {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ command }),
    });
    streams.push(retry);
    const two = await retry.untilEnd(60_000);
    expect(retry.res.headers.get('hourglass-exec-id')).toBe(first.res.headers.get('hourglass-exec-id'));
    expect(stdoutOf(two).toString()).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(stdoutOf(two).toString()).toBe(stdoutOf(one).toString());
    expect(two.at(-1)!.event).toBe('exit');
  });

  it(
    'runs a background command with stdin: polled, its output followed, killed, listed',
    async () => {
      const script =
        'while read l; do echo "got $l"; done; i=0; ' +
        `while true; do i=$((i+1)); echo "tick $i"; echo "tick $i" >> ${ws}/ticks.txt; sleep 0.2; done`;
      const started = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, {
        command: ['sh', '-c', script],
        background: true,
        stdin: 'hello\nworld\n',
      });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      const { execId } = started.body;
      expect(started.body).toEqual({ execId, sandboxId: sbx.id, state: 'running' });

      const rec = await alice('GET', `/v1/sandboxes/${sbx.id}/execs/${execId}`);
      expect(rec.body).toMatchObject({ execId, mode: 'background', state: 'running', finishedAt: null });
      const text = await eventually(async () => {
        const page = await alice('GET', `/v1/sandboxes/${sbx.id}/execs/${execId}/output`);
        const all = page.body.items.map((i: { text: string }) => i.text).join('');
        return /tick 3\n/.test(all) ? all : undefined;
      }, 60_000);
      expect(text).toMatch(/^got hello\ngot world\ntick 1\n/);
      // What it writes, read through the files API while it runs.
      const ticks = await getFile(sbx.id, 'ticks.txt');
      expect(ticks.status).toBe(200);
      expect(ticks.bytes.toString()).toMatch(/^tick 1\ntick 2\n/);

      const live = await follow(sbx.id, execId);
      const some = await live.until((m) => m.event === 'stdout' && /tick 5\n/.test(JSON.parse(m.data).text), 60_000);
      expect(stdoutOf(some).toString()).toMatch(/^got hello\n/);
      // Four streams on it, one LISTEN connection for the process (another test file's API may hold one more).
      const more = await Promise.all([1, 2, 3].map(() => follow(sbx.id, execId)));
      for (const m of more) expect((await m.next(30_000))?.event).toBe('stdout');
      const { rows } = await h.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'hourglass-exec_output'`,
      );
      expect(rows[0].n).toBeGreaterThanOrEqual(1);
      expect(rows[0].n).toBeLessThanOrEqual(2);
      for (const m of more) m.close();

      const killed = await alice('POST', `/v1/sandboxes/${sbx.id}/execs/${execId}/kill`);
      expect(killed.status, JSON.stringify(killed.body)).toBe(200);
      expect(killed.body).toMatchObject({ execId, state: 'killed' });
      expect(killed.body.finishedAt).toBeTruthy();
      // The follower ends with the exit (killed is an exit, not an error).
      const rest = await live.untilEnd(60_000);
      expect(rest.at(-1)!.event, rest.at(-1)!.data).toBe('exit');
      const again = await alice('POST', `/v1/sandboxes/${sbx.id}/execs/${execId}/kill`);
      expect(again.status).toBe(409);
      expect(again.body.error).toMatchObject({ code: 'invalid_state', details: { state: 'killed' } });
      expect(again.body.error.message).toMatch(/already ended \(state killed\)/);

      const listed = await alice('GET', `/v1/sandboxes/${sbx.id}/execs`);
      expect(listed.body.items.find((e: { execId: string }) => e.execId === execId)).toMatchObject({
        mode: 'background',
        state: 'killed',
      });
      // It is gone: the file stops growing.
      const size = (await getFile(sbx.id, 'ticks.txt')).bytes.length;
      await new Promise((r) => setTimeout(r, 1000));
      expect((await getFile(sbx.id, 'ticks.txt')).bytes.length).toBe(size);

      const unknown = await alice('GET', `/v1/sandboxes/${sbx.id}/execs/no-such-exec`);
      expect(unknown.status).toBe(404);
      expect((await alice('POST', `/v1/sandboxes/${sbx.id}/execs/no-such-exec/kill`)).status).toBe(404);
    },
    VM_MS,
  );

  it(
    'measures time to first byte and streamed exec throughput',
    async () => {
      // The command prints its clock when it writes. A process sandbox shares ours; a VM's is its
      // uptime (busybox's date has no %N), set against ours by the best of a few plain execs (±rtt/2).
      const clockCommand = driver === 'process' ? 'date +%s%N' : 'cat /proc/uptime';
      const clockMs = (text: string) =>
        driver === 'process' ? Number(BigInt(text.trim()) / 1_000_000n) : Number(text.trim().split(/\s+/)[0]) * 1000;
      let offsetMs = 0;
      let errorMs = 0;
      if (driver !== 'process') {
        let best = { rtt: Infinity, offset: 0 };
        for (let i = 0; i < 5; i++) {
          const t0 = Date.now();
          const r = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sh', '-c', clockCommand] });
          const t1 = Date.now();
          const offset = clockMs(r.body.stdout) - (t0 + t1) / 2;
          if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset };
        }
        offsetMs = best.offset;
        errorMs = best.rtt / 2;
      }
      const samples: number[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await execStream(sbx.id, { command: ['sh', '-c', `sleep 1; ${clockCommand}; sleep 0.2`] });
        const first = (await s.until((m) => m.event === 'stdout', 60_000)).at(-1)!;
        const arrived = Date.now();
        samples.push(arrived - (clockMs(JSON.parse(first.data).text) - offsetMs));
        await s.untilEnd(60_000);
      }
      samples.sort((a, b) => a - b);
      const clock = errorMs ? `; guest clock ±${Math.round(errorMs)} ms` : '';
      figures.push(
        `${driver}: stream TTFB (command writes → SSE event here) median ${Math.round(samples[1]!)} ms ` +
          `(samples ${samples.map((x) => Math.round(x)).join(', ')}${clock})`,
      );
      // Printed above; asserted only loosely (a loaded CI runner is slow, not broken).
      expect(samples[1]!).toBeLessThan(15_000 + errorMs);

      const bytes = driver === 'process' ? 32 * 1024 * 1024 : 8 * 1024 * 1024;
      const s = await execStream(sbx.id, { command: ['sh', '-c', `head -c ${bytes} /dev/zero | tr '\\0' a`] });
      const t0 = Date.now();
      const all = await s.untilEnd(VM_MS);
      const ms = Date.now() - t0;
      expect(all.at(-1)!.event, all.at(-1)!.data).toBe('exit');
      expect(stdoutOf(all).length).toBe(bytes);
      expectGapless(seqsOf(all));
      figures.push(`${driver}: streamed exec ${bytes / 1024 / 1024} MiB in ${ms} ms = ${mbPerSecond(bytes, ms)} MB/s`);
    },
    VM_MS,
  );

  it(
    'round-trips a 50 MB file with an identical sha256; lists, removes, makes directories',
    async () => {
      const data = randomBytes(50 * 1000 * 1000);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const t0 = Date.now();
      const put = await putFile(sbx.id, 'big.bin', data, '&mode=600');
      const putMs = Date.now() - t0;
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      expect(put.body).toMatchObject({ size: data.length, sha256 });
      expect(put.body.path).toMatch(/^\/.*\/big\.bin$/);

      const t1 = Date.now();
      const got = await getFile(sbx.id, put.body.path);
      const getMs = Date.now() - t1;
      expect(got.status).toBe(200);
      expect(got.headers.get('content-type')).toBe('application/octet-stream');
      expect(got.headers.get('hourglass-file-kind')).toBe('file');
      expect(got.headers.get('hourglass-sha256')).toBe(sha256);
      expect(Number(got.headers.get('content-length'))).toBe(data.length);
      expect(createHash('sha256').update(got.bytes).digest('hex')).toBe(sha256);
      figures.push(
        `${driver}: 50 MB upload ${putMs} ms = ${mbPerSecond(data.length, putMs)} MB/s; ` +
          `download ${getMs} ms = ${mbPerSecond(data.length, getMs)} MB/s`,
      );

      const list = await alice('GET', `/v1/sandboxes/${sbx.id}/files/list`);
      expect(list.status).toBe(200);
      expect(list.body.entries.find((e: { name: string }) => e.name === 'big.bin')).toMatchObject({
        type: 'file',
        size: data.length,
        mode: '600',
      });
      expect(list.body.truncated).toBe(false);

      const mk = await alice('POST', `/v1/sandboxes/${sbx.id}/files/mkdir`, { path: 'dir/sub', parents: true });
      expect(mk.status, JSON.stringify(mk.body)).toBe(201);
      expect(mk.body.path).toMatch(/\/dir\/sub$/);
      expect((await putFile(sbx.id, 'dir/a.txt', 'alpha\n')).status).toBe(200);
      expect((await putFile(sbx.id, 'dir/sub/b.txt', 'beta\n')).status).toBe(200);
      const tar = await getFile(sbx.id, 'dir');
      expect(tar.status).toBe(200);
      expect(tar.headers.get('content-type')).toBe('application/x-tar');
      expect(tar.headers.get('hourglass-file-kind')).toBe('directory');
      expect(tar.headers.get('hourglass-sha256')).toBe(createHash('sha256').update(tar.bytes).digest('hex'));
      const names = tarNames(tar.bytes);
      expect(names.some((n) => n.endsWith('a.txt'))).toBe(true);
      expect(names.some((n) => n.endsWith('sub/b.txt'))).toBe(true);

      const rm = await alice('DELETE', `/v1/sandboxes/${sbx.id}/files?path=big.bin`);
      expect(rm.body).toMatchObject({ existed: true });
      expect((await alice('DELETE', `/v1/sandboxes/${sbx.id}/files?path=big.bin`)).body).toMatchObject({
        existed: false,
      });
      const rmDir = await alice('DELETE', `/v1/sandboxes/${sbx.id}/files?path=dir&recursive=true`);
      expect(rmDir.body).toMatchObject({ existed: true });

      // No transfer outlives its request.
      const { rows } = await h.pool.query('SELECT count(*)::int AS n FROM transfers WHERE sandbox_id = $1', [sbx.id]);
      expect(rows[0].n).toBe(0);
    },
    VM_MS,
  );

  it(
    'refuses paths that escape the workspace (.., absolute outside, a symlink out): 400; a missing file: 404',
    async () => {
      const link = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, {
        command: ['ln', '-sfn', '/etc', `${ws}/outlink`],
      });
      expect(link.body.exitCode).toBe(0);
      const marker = `escape-${randomBytes(4).toString('hex')}`;
      for (const path of ['../etc/passwd', 'a/../../etc/passwd', '/etc/passwd', 'outlink/passwd', 'outlink']) {
        const got = await getFile(sbx.id, path);
        expect(got.status, `GET ${path}: ${got.bytes.toString().slice(0, 300)}`).toBe(400);
        expect(JSON.parse(got.bytes.toString()).error.code).toBe('invalid_argument');
      }
      for (const path of ['../x', `/tmp/${marker}`, `outlink/${marker}`]) {
        const put = await putFile(sbx.id, path, 'nope');
        expect(put.status, `PUT ${path}: ${JSON.stringify(put.body)}`).toBe(400);
      }
      expect(existsSync(`/etc/${marker}`)).toBe(false);
      expect(existsSync(`/tmp/${marker}`)).toBe(false);
      const list = await alice('GET', `/v1/sandboxes/${sbx.id}/files/list?path=outlink`);
      expect(list.status).toBe(400);
      const mk = await alice('POST', `/v1/sandboxes/${sbx.id}/files/mkdir`, { path: '../up' });
      expect(mk.status).toBe(400);
      const rm = await alice('DELETE', `/v1/sandboxes/${sbx.id}/files?path=/etc/hostname`);
      expect(rm.status).toBe(400);

      const missing = await getFile(sbx.id, 'no/such/file.txt');
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.bytes.toString()).error.code).toBe('path_not_found');
      expect((await alice('GET', `/v1/sandboxes/${sbx.id}/files/list?path=no-such-dir`)).status).toBe(404);
    },
    VM_MS,
  );

  it('refuses an upload past 100 MiB with 413 without reading it, leaving nothing behind', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(url(`/v1/sandboxes/${sbx.id}/files?path=huge.bin`), {
        method: 'PUT',
        headers: { ...auth(), 'content-length': String(100 * 1024 * 1024 + 1) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024));
    });
    expect(status).toBe(413);
    const { rows } = await h.pool.query('SELECT count(*)::int AS n FROM transfers WHERE sandbox_id = $1', [sbx.id]);
    expect(rows[0].n).toBe(0);
    expect((await getFile(sbx.id, 'huge.bin')).status).toBe(404);
  });

  it.runIf(driver === 'process')(
    'refuses a download past 100 MiB with 413 too_large at once (a sparse 200 MiB file), storing nothing',
    async () => {
      const made = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, {
        command: ['truncate', '-s', '200M', `${ws}/sparse.bin`],
      });
      expect(made.body.exitCode, JSON.stringify(made.body)).toBe(0);
      const t0 = Date.now();
      const got = await getFile(sbx.id, 'sparse.bin');
      const ms = Date.now() - t0;
      expect(got.status, got.bytes.toString().slice(0, 300)).toBe(413);
      expect(JSON.parse(got.bytes.toString()).error.code).toBe('too_large');
      figures.push(`${driver}: a 200 MiB (sparse) download refused with 413 in ${ms} ms`);
      expect(ms).toBeLessThan(120_000);
      const { rows } = await h.pool.query(
        `SELECT (SELECT count(*)::int FROM transfers WHERE sandbox_id = $1) AS transfers,
                (SELECT count(*)::int FROM transfer_chunks c
                   WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = c.transfer_id)) AS orphans`,
        [sbx.id],
      );
      expect(rows[0]).toEqual({ transfers: 0, orphans: 0 });
      expect((await alice('DELETE', `/v1/sandboxes/${sbx.id}/files?path=sparse.bin`)).body.existed).toBe(true);
    },
    VM_MS,
  );

  it(
    'a keyed background retry answers the exec already there (200, its record) and runs nothing twice',
    async () => {
      const key = `dp-bg-${randomBytes(6).toString('hex')}`;
      const marker = `keyed-${randomBytes(4).toString('hex')}.txt`;
      const body = { command: ['sh', '-c', `echo ran >> ${ws}/${marker}; sleep 60`], background: true };
      const first = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, body, { 'idempotency-key': key });
      expect(first.status, JSON.stringify(first.body)).toBe(202);
      const { execId } = first.body;
      await eventually(async () => (await getFile(sbx.id, marker)).status === 200 || undefined, 60_000);
      const again = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, body, { 'idempotency-key': key });
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body).toMatchObject({ execId, mode: 'background', state: 'running' });
      // A streamed retry with the key follows that same exec (its start, then its output as it comes).
      const streamed = await execStream(sbx.id, { command: body.command }, ALICE, { 'idempotency-key': key });
      expect(streamed.res.headers.get('hourglass-exec-id')).toBe(execId);
      expect((await streamed.next(30_000))?.event).toBe('start');
      streamed.close();
      expect((await getFile(sbx.id, marker)).bytes.toString()).toBe('ran\n');
      expect((await alice('POST', `/v1/sandboxes/${sbx.id}/execs/${execId}/kill`)).body.state).toBe('killed');
      await alice('DELETE', `/v1/sandboxes/${sbx.id}/files?path=${marker}`);
    },
    VM_MS,
  );

  it(
    'ends a stream with an error naming the reason when the sandbox is destroyed mid-command',
    async () => {
      const doomed = await sandboxes.get(driver)!.doomed;
      expect(doomed.state).toBe('RUNNING');
      const s = await execStream(doomed.id, { command: ['sh', '-c', 'echo started; sleep 600'] });
      const execId = s.res.headers.get('hourglass-exec-id')!;
      await s.until((m) => m.event === 'stdout', 60_000);
      const destroyedAt = Date.now();
      const del = await alice('DELETE', `/v1/sandboxes/${doomed.id}`, { reason: 'data-plane test' });
      expect(del.status).toBe(202);
      const rest = await s.untilEnd(120_000);
      const end = rest.at(-1)!;
      expect(end.event, end.data).toBe('error');
      const { error } = JSON.parse(end.data) as { error: { code: string; message: string } };
      expect(error.message).toMatch(/data-plane test/);
      expect(await s.next(10_000)).toBeNull();
      figures.push(`${driver}: destroy → stream's error event ${Date.now() - destroyedAt} ms`);

      // A follower after the fact ends the same way, from the record.
      const later = await follow(doomed.id, execId);
      const ended = await later.untilEnd(30_000);
      expect(ended.at(-1)!.event, ended.at(-1)!.data).toBe('error');
      expect(JSON.parse(ended.at(-1)!.data).error.message).toMatch(/data-plane test/);
      const rec = await alice('GET', `/v1/sandboxes/${doomed.id}/execs/${execId}`);
      expect(rec.body).toMatchObject({ state: 'failed' });
      // An exec whose end was never written (its workflow gone with the sandbox): a follower does
      // not poll forever, it ends with invalid_state naming the destroy's reason.
      await eventually(
        async () => (await alice('GET', `/v1/sandboxes/${doomed.id}`)).body.state === 'DESTROYED' || undefined,
        120_000,
      );
      const orphan = `orphan-${randomBytes(4).toString('hex')}`;
      await recordExecStart(h.pool, {
        sandboxId: doomed.id,
        execId: orphan,
        command: ['sleep', '600'],
        envNames: [],
        startedAt: new Date().toISOString(),
        mode: 'background',
      });
      const orphaned = await (await follow(doomed.id, orphan)).untilEnd(30_000);
      expect(orphaned.at(-1)!.event, orphaned.at(-1)!.data).toBe('error');
      expect(JSON.parse(orphaned.at(-1)!.data).error).toMatchObject({ code: 'invalid_state' });
      expect(JSON.parse(orphaned.at(-1)!.data).error.message).toMatch(
        /destroyed while the command ran.*data-plane test/,
      );
      // Nothing more may run there: a JSON refusal, never a stream.
      const refused = await execStream(doomed.id, { command: ['true'] });
      expect(refused.res.status).toBe(409);
      expect(refused.res.headers.get('content-type')).toMatch(/^application\/json/);
      expect((await putFile(doomed.id, 'late.txt', 'too late')).status).toBe(409);
      expect((await getFile(doomed.id, 'late.txt')).status).toBe(409);
    },
    VM_MS,
  );
});

describe.runIf(DRIVERS.includes('process'))('owners', () => {
  it('another owner gets 404 on every data-plane route of a sandbox', async () => {
    const sbx = await sandboxes.get('process')!.main;
    const started = await alice('POST', `/v1/sandboxes/${sbx.id}/exec`, {
      command: ['sleep', '30'],
      background: true,
    });
    expect(started.status).toBe(202);
    const execId = started.body.execId as string;
    const base = `/v1/sandboxes/${sbx.id}`;
    const calls: [string, string, unknown?][] = [
      ['POST', `${base}/exec`, { command: ['true'], stream: true }],
      ['POST', `${base}/exec`, { command: ['true'], background: true }],
      ['GET', `${base}/execs/${execId}`],
      ['GET', `${base}/execs/${execId}/output`],
      ['GET', `${base}/execs/${execId}/output?follow=true`],
      ['POST', `${base}/execs/${execId}/kill`],
      ['GET', `${base}/files?path=x`],
      ['DELETE', `${base}/files?path=x`],
      ['GET', `${base}/files/list`],
      ['POST', `${base}/files/mkdir`, { path: 'd' }],
    ];
    for (const [method, path, body] of calls) {
      const res = await bob(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code, `${method} ${path}`).toBe('not_found');
    }
    const put = await putFile(sbx.id, 'x', 'bob was here', '', BOB);
    expect(put.status).toBe(404);
    expect((await alice('GET', `${base}/execs/${execId}`)).body.state).toBe('running');
    expect((await getFile(sbx.id, 'x')).status).toBe(404);
    expect((await alice('POST', `${base}/execs/${execId}/kill`)).body.state).toBe('killed');
  });

  it('refuses bad requests before anything runs: stream with background, both stdins, stdin too big', async () => {
    const sbx = await sandboxes.get('process')!.main;
    const base = `/v1/sandboxes/${sbx.id}`;
    const bad = [
      { command: ['true'], stream: true, background: true },
      { command: ['cat'], stdin: 'a', stdinBase64: 'YQ==' },
      { command: ['cat'], stdin: 'a'.repeat(256 * 1024 + 1) },
    ];
    for (const body of bad) {
      const res = await alice('POST', `${base}/exec`, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
    // Every mode reads stdin: a waited exec answers with what the command made of it.
    const waited = await alice('POST', `${base}/exec`, { command: ['cat'], stdin: 'plain stdin\n' });
    expect(waited.status).toBe(200);
    expect(waited.body.stdout).toBe('plain stdin\n');
    const fed = await execStream(sbx.id, { command: ['cat'], stdin: 'fed stdin\n' });
    expect(stdoutOf(await fed.untilEnd(30_000)).toString()).toBe('fed stdin\n');
    const badSeq = await follow(sbx.id, 'whatever', { 'last-event-id': 'abc' });
    expect(badSeq.res.status).toBe(400);
  });
});

describe.runIf(DRIVERS.includes('process'))('per-owner caps', () => {
  it('429 rate_limited past the running streamed/background commands an owner may have, naming the cap', async () => {
    const sbx = await sandboxes.get('process')!.main;
    const base = `/v1/sandboxes/${sbx.id}`;
    const opts = h.service.context.opts;
    const running = await countRunningExecs(h.pool, 'dp-alice');
    opts.maxRunningExecsPerOwner = running + 1;
    try {
      const one = await alice('POST', `${base}/exec`, { command: ['sleep', '60'], background: true });
      expect(one.status, JSON.stringify(one.body)).toBe(202);
      await eventually(async () => (await countRunningExecs(h.pool, 'dp-alice')) > running || undefined, 30_000);
      const two = await alice('POST', `${base}/exec`, { command: ['sleep', '60'], background: true });
      expect(two.status, JSON.stringify(two.body)).toBe(429);
      expect(two.body.error).toMatchObject({
        code: 'rate_limited',
        details: { cap: 'running_execs', max: running + 1 },
      });
      expect(two.body.error.message).toMatch(/HOURGLASS_MAX_RUNNING_EXECS_PER_OWNER/);
      const streamed = await execStream(sbx.id, { command: ['true'] });
      expect(streamed.res.status).toBe(429);
      expect(streamed.res.headers.get('retry-after')).toBe('5');
      // A waited exec is not a running command of the data plane: never refused by this cap.
      expect((await alice('POST', `${base}/exec`, { command: ['true'] })).status).toBe(200);
      // Another owner is not counted against alice (bob owns nothing running here: his own sandbox 404s).
      expect(await countRunningExecs(h.pool, 'dp-bob')).toBe(0);
      const killed = await alice('POST', `${base}/execs/${one.body.execId}/kill`);
      expect(killed.body.state).toBe('killed');
      const three = await alice('POST', `${base}/exec`, { command: ['true'], background: true });
      expect(three.status, JSON.stringify(three.body)).toBe(202);
    } finally {
      opts.maxRunningExecsPerOwner = undefined;
    }
  });

  it('429 rate_limited past the transfers an owner may have under way; a finished one frees its slot', async () => {
    const sbx = await sandboxes.get('process')!.main;
    const opts = h.service.context.opts;
    const held = `cap-test-${randomBytes(4).toString('hex')}`;
    opts.maxTransfersPerOwner = 1;
    await createTransfer(h.pool, { id: held, sandboxId: sbx.id, owner: 'dp-alice', direction: 'upload', path: 'x' });
    try {
      const put = await putFile(sbx.id, 'capped.txt', 'capped\n');
      expect(put.status, JSON.stringify(put.body)).toBe(429);
      expect(put.body.error).toMatchObject({ code: 'rate_limited', details: { cap: 'transfers', max: 1 } });
      expect(put.body.error.message).toMatch(/HOURGLASS_MAX_TRANSFERS_PER_OWNER/);
      const got = await getFile(sbx.id, 'capped.txt');
      expect(got.status).toBe(429);
      // bob's transfers are his own: alice's held one does not count against him (his 404 is the sandbox's).
      expect((await putFile(sbx.id, 'capped.txt', 'x', '', BOB)).status).toBe(404);
      await deleteTransfer(h.pool, held);
      expect((await putFile(sbx.id, 'capped.txt', 'capped\n')).status).toBe(200);
      expect((await getFile(sbx.id, 'capped.txt')).bytes.toString()).toBe('capped\n');
    } finally {
      opts.maxTransfersPerOwner = undefined;
      await deleteTransfer(h.pool, held);
    }
  });
});
