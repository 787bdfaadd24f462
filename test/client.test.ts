// The typed client (imported by the package's own name, `hourglass/client`) against the real API,
// Temporal, PostgreSQL and the process driver: every route, errors typed, streams resumed.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HourglassApiError, HourglassClient, type ExecEvent, type SandboxStatus } from 'hourglass/client';
import { eventually, startHarness, type Harness } from './support/harness';

const USER = randomBytes(12).toString('hex');
const ADMIN = randomBytes(12).toString('hex');

let h: Harness;
let c: HourglassClient;
beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: 'client-user', role: 'user', token: USER },
      { owner: 'client-ops', role: 'admin', token: ADMIN },
    ],
    webhooks: { allowPrivate: true },
  });
  c = new HourglassClient({ baseUrl: h.baseUrl, token: USER });
});
afterAll(() => h?.close());

/** The refusal a call ends with (fails the test if it succeeds). */
async function refusal(p: Promise<unknown>): Promise<HourglassApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HourglassApiError);
  return err as HourglassApiError;
}

const running = (labels: Record<string, string> = {}) =>
  c.createSandbox({ ttlSeconds: 120, labels: { suite: 'client', ...labels } });

const untilDestroyed = (id: string) =>
  eventually(async () => ((await c.getSandbox(id)).state === 'DESTROYED' ? true : undefined), 30_000);

async function collect(events: AsyncIterable<ExecEvent>): Promise<ExecEvent[]> {
  const all: ExecEvent[] = [];
  for await (const e of events) all.push(e);
  return all;
}

const text = (events: ExecEvent[], stream: 'stdout' | 'stderr') =>
  Buffer.concat(events.flatMap((e) => (e.type === stream ? [e.data] : []))).toString();

describe('control plane through the client', () => {
  it('creates (idempotently), reads, lists, renews, stops, starts and destroys a sandbox', async () => {
    const key = `client-${randomBytes(4).toString('hex')}`;
    const s = await c.createSandbox(
      { ttlSeconds: 60, labels: { suite: 'client', step: 'life' } },
      { idempotencyKey: key },
    );
    expect(s).toMatchObject({ state: 'RUNNING', owner: 'client-user', driver: 'process' });
    const again = await c.createSandbox(
      { ttlSeconds: 60, labels: { suite: 'client', step: 'life' } },
      { idempotencyKey: key },
    );
    expect(again.id).toBe(s.id);
    expect((await c.getSandbox(s.id)).state).toBe('RUNNING');

    const page = await eventually(async () => {
      const p = await c.listSandboxes({ label: { step: 'life' }, state: ['RUNNING'], limit: 10 });
      return p.items.some((i) => i.id === s.id) ? p : undefined;
    });
    expect(page.items.every((i) => i.labels.step === 'life')).toBe(true);

    const renewed = await c.renewLease(s.id, 90);
    expect(renewed).toMatchObject({ id: s.id, capped: false });
    expect(Date.parse(renewed.expiresAt) - Date.now()).toBeGreaterThan(80_000);
    expect(await c.renewLeaseBySignal(s.id, 100)).toEqual({ id: s.id, accepted: true });

    expect((await c.stopSandbox(s.id)).state).toBe('STOPPED');
    expect((await c.startSandbox(s.id)).state).toBe('RUNNING');

    const destroyed = await c.destroySandbox(s.id, { reason: 'client test' });
    expect(destroyed.id).toBe(s.id);
    await untilDestroyed(s.id);
    const events = await c.sandboxEvents(s.id);
    expect(events.items.map((e) => e.to)).toEqual(expect.arrayContaining(['RUNNING', 'STOPPED', 'DESTROYED']));
  });

  it('runs a command and lists the sandbox execs', async () => {
    const s = await running();
    const out = await c.exec(s.id, { command: ['sh', '-c', 'echo hi; echo oops >&2; exit 3'] });
    expect(out).toMatchObject({ exitCode: 3, stdout: 'hi\n', stderr: 'oops\n', timedOut: false });
    const execs = await c.listExecs(s.id);
    expect(execs.items).toHaveLength(1);
    expect(execs.items[0]).toMatchObject({ command: ['sh', '-c', 'echo hi; echo oops >&2; exit 3'], exitCode: 3 });
    const forced = await c.destroySandbox(s.id, { force: true, reason: 'forced by the client test' });
    expect(forced).toMatchObject({ id: s.id, state: 'DESTROYED' });
  });

  it('throws HourglassApiError with the status, code, message and details of each refusal', async () => {
    const missing = await refusal(c.getSandbox('sbx-does-not-exist'));
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });

    // Types stop most bad input; the API still judges what gets through (a negative TTL).
    const bad = await refusal(c.createSandbox({ ttlSeconds: -5 }));
    expect(bad).toMatchObject({ status: 400, code: 'invalid_argument' });
    expect(bad.message).toMatch(/ttlSeconds/);
    expect(bad.details).toHaveProperty('issues');

    const s = await running();
    await c.destroySandbox(s.id, { force: true });
    const late = await refusal(c.renewLease(s.id, 60));
    expect(late).toMatchObject({ status: 409, code: 'invalid_state' });
    expect(late.toJSON().error.code).toBe('invalid_state');

    const anonymous = new HourglassClient({ baseUrl: h.baseUrl, token: 'not-a-token' });
    expect(await refusal(anonymous.listSandboxes())).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(await refusal(c.prune({ dryRun: true }))).toMatchObject({ status: 403, code: 'forbidden' });

    const nowhere = new HourglassClient({ baseUrl: 'http://127.0.0.1:9' });
    const down = await refusal(nowhere.getSandbox('sbx-1'));
    expect(down).toMatchObject({ status: 0, code: 'unreachable' });
    expect(down.message).toMatch(/cannot reach the Hourglass API at http:\/\/127.0.0.1:9/);
  });

  it('sessions: create, join, heartbeat, end (its sandboxes destroyed)', async () => {
    const session = await c.createSession({ heartbeatTimeoutSeconds: 300 });
    expect(session).toMatchObject({ state: 'ACTIVE', heartbeatTimeoutSeconds: 300 });
    const s = await c.createSandbox({ ttlSeconds: 120, sessionId: session.id, labels: { suite: 'client' } });
    expect(s.sessionId).toBe(session.id);
    expect((await c.getSession(session.id)).sandboxes).toContain(s.id);
    const beat = await c.heartbeatSession(session.id);
    expect(Date.parse(beat.deadline)).toBeGreaterThanOrEqual(Date.parse(session.deadline));
    await c.endSession(session.id);
    await untilDestroyed(s.id);
    expect((await c.getSession(session.id)).state).toBe('ENDED');
  });

  it('jobs: create, then read until every step has run', async () => {
    const job = await c.createJob({
      ttlSeconds: 60,
      commands: [
        ['echo', 'one'],
        ['sh', '-c', 'echo two >&2'],
      ],
    });
    expect(job).toMatchObject({ owner: 'client-user', sandboxId: job.id });
    const done = await eventually(async () => {
      const j = await c.getJob(job.id);
      return j.state === 'COMPLETED' ? j : undefined;
    }, 60_000);
    expect(done.steps.map((s) => [s.stdout, s.stderr])).toEqual([
      ['one\n', ''],
      ['', 'two\n'],
    ]);
    expect(await refusal(c.getJob('sbx-not-a-job'))).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('events: a JSON page of the feed, and a sandbox followed live until it is destroyed', async () => {
    const s = await running({ step: 'events' });
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of c.followSandboxEvents(s.id)) seen.push(e.to);
    })();
    await eventually(async () => seen.includes('RUNNING'));
    await c.destroySandbox(s.id);
    await following; // ends by itself after DESTROYED
    expect(seen.slice(-1)).toEqual(['DESTROYED']);
    expect(seen).toEqual(expect.arrayContaining(['REQUESTED', 'RUNNING', 'DESTROYING', 'DESTROYED']));

    const page = await c.listEvents({ label: { step: 'events' }, limit: 100 });
    expect(page.items.filter((e) => e.sandboxId === s.id).map((e) => e.to)).toEqual(seen);
    expect(page.nextAfter).toBe(page.items.at(-1)?.id);

    const abort = new AbortController();
    const live: string[] = [];
    const feed = (async () => {
      for await (const e of c.followEvents({ label: { step: 'events-live' } }, { signal: abort.signal })) {
        live.push(`${e.sandboxId}:${e.to}`);
        if (e.to === 'RUNNING') abort.abort();
      }
    })().catch((err: unknown) => (abort.signal.aborted ? undefined : Promise.reject(err)));
    const t = await running({ step: 'events-live' });
    await feed;
    expect(live).toContain(`${t.id}:RUNNING`);
    await c.destroySandbox(t.id, { force: true });
  });

  it('webhooks, bulk destroy, prune (admin) and health', async () => {
    const hook = await c.createWebhook({ url: 'http://127.0.0.1:9/hook', events: ['sandbox.destroyed'] });
    expect(hook.secret.length).toBeGreaterThanOrEqual(16);
    expect((await c.listWebhooks()).items.map((w) => w.id)).toContain(hook.id);
    expect(await c.getWebhook(hook.id)).not.toHaveProperty('secret');
    expect((await c.webhookDeliveries(hook.id, { limit: 5 })).items).toEqual([]);
    expect((await c.deleteWebhook(hook.id)).deletedAt).toBeDefined();

    const [a, b] = await Promise.all([running({ step: 'bulk' }), running({ step: 'bulk' })]);
    const bulk = await c.bulkDestroy({ label: 'step=bulk', force: true });
    expect(bulk.failed).toBe(0);
    expect(bulk.items.map((i) => i.id).sort()).toEqual([a!.id, b!.id].sort());

    const admin = new HourglassClient({ baseUrl: h.baseUrl, token: ADMIN });
    const report = await admin.prune({ dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.count).toBe(report.items.length);
    expect((await c.health()).ok).toBe(true);
  });
});

describe('data plane through the client', () => {
  let s: SandboxStatus;
  beforeAll(async () => {
    s = await running({ step: 'data' });
  });
  afterAll(() => c.destroySandbox(s.id, { force: true }).catch(() => {}));

  it('streams 10,000 numbered lines complete and in order, then the exit', async () => {
    const started = Date.now();
    const events = await collect(c.execStream(s.id, { command: ['sh', '-c', 'seq 1 10000; echo done >&2; exit 7'] }));
    expect(events[0]).toMatchObject({ type: 'start' });
    expect(events.at(-1)).toMatchObject({ type: 'exit', exitCode: 7, timedOut: false });
    const lines = text(events, 'stdout').trimEnd().split('\n');
    expect(lines).toEqual(Array.from({ length: 10_000 }, (_, i) => String(i + 1)));
    expect(text(events, 'stderr')).toBe('done\n');
    const seqs = events.flatMap((e) => (e.type === 'stdout' || e.type === 'stderr' ? [e.seq] : []));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    console.log(`streamed exec: ${events.length} events in ${Date.now() - started} ms`);
  });

  it('yields a chunk as soon as the command writes it, long before the command ends', async () => {
    const t0 = Date.now();
    let firstChunkMs = 0;
    let exitMs = 0;
    for await (const e of c.execStream(s.id, { command: ['sh', '-c', 'echo first; sleep 2; echo last'] })) {
      if (e.type === 'stdout' && !firstChunkMs) firstChunkMs = Date.now() - t0;
      if (e.type === 'exit') exitMs = Date.now() - t0;
    }
    expect(exitMs).toBeGreaterThanOrEqual(2000);
    // Figures printed below; asserted loosely (a loaded runner is slow): the chunk came before the end.
    expect(firstChunkMs).toBeLessThan(exitMs - 500);
    console.log(`streamed exec: first chunk after ${firstChunkMs} ms (call to first byte), exit after ${exitMs} ms`);
  });

  it('resumes a dropped stream with Last-Event-ID: no chunk twice, none lost', async () => {
    const cuts = dropFirstStreamsAfter(4096, 2);
    const flaky = new HourglassClient({ baseUrl: h.baseUrl, token: USER, fetch: cuts.fetch });
    const events = await collect(
      // Pauses make many small chunks, so a cut lands after some of them (the resume then names a seq).
      flaky.execStream(s.id, {
        command: ['sh', '-c', 'for i in $(seq 1 3000); do echo line-$i; [ $((i % 100)) = 0 ] && sleep 0.02; done'],
      }),
    );
    expect(cuts.dropped).toBe(2);
    expect(cuts.resumedWith.length).toBeGreaterThanOrEqual(1);
    const lines = text(events, 'stdout').trimEnd().split('\n');
    expect(lines).toEqual(Array.from({ length: 3000 }, (_, i) => `line-${i + 1}`));
    const seqs = events.flatMap((e) => (e.type === 'stdout' ? [e.seq] : []));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(events.at(-1)).toMatchObject({ type: 'exit', exitCode: 0 });
  });

  it('runs a command in the background: polled, followed, killed', async () => {
    const bg = await c.startBackground(s.id, {
      command: ['sh', '-c', 'echo ready; while true; do sleep 0.1; done'],
    });
    expect(bg).toMatchObject({ sandboxId: s.id, state: 'running' });
    expect(await c.getExec(s.id, bg.execId)).toMatchObject({ state: 'running', mode: 'background' });

    const abort = new AbortController();
    const seen: ExecEvent[] = [];
    await (async () => {
      for await (const e of c.followOutput(s.id, bg.execId, { signal: abort.signal })) {
        seen.push(e);
        if (e.type === 'stdout' && e.data.toString().includes('ready')) abort.abort();
      }
    })().catch((err: unknown) => (abort.signal.aborted ? undefined : Promise.reject(err)));
    expect(text(seen, 'stdout')).toBe('ready\n');

    const killed = await c.killExec(s.id, bg.execId);
    expect(killed).toMatchObject({ execId: bg.execId, state: 'killed' });
    const again = await refusal(c.killExec(s.id, bg.execId));
    expect(again).toMatchObject({ status: 409, code: 'invalid_state' });

    // Followed after it ended: the output from the start, then its terminal event.
    const replay = await collect(c.followOutput(s.id, bg.execId));
    expect(text(replay, 'stdout')).toBe('ready\n');
    expect(['exit', 'error']).toContain(replay.at(-1)?.type);
    const page = await c.getExecOutput(s.id, bg.execId);
    expect(page).toMatchObject({ finished: true });
    expect(page.items[0]).toMatchObject({ stream: 'stdout', text: 'ready\n' });
    expect((await c.listExecs(s.id)).items.map((e) => e.execId)).toContain(bg.execId);
  });

  it('writes and reads files as Buffer, string and stream; lists, makes directories, removes', async () => {
    expect(await c.makeDirectory(s.id, 'dir/sub', { parents: true })).toMatchObject({ path: '/work/dir/sub' });
    const small = await c.writeFile(s.id, 'dir/hello.txt', 'hello\n', { mode: 0o600 });
    expect(small).toMatchObject({ path: '/work/dir/hello.txt', size: 6, sha256: sha('hello\n') });
    expect((await c.readFileBuffer(s.id, '/work/dir/hello.txt')).toString()).toBe('hello\n');

    const bytes = randomBytes(20 * 1024 * 1024);
    const t0 = Date.now();
    const streamed = await c.writeFile(s.id, 'dir/sub/blob.bin', Readable.from(chunks(bytes, 64 * 1024)));
    const uploadMs = Date.now() - t0;
    expect(streamed).toMatchObject({ size: bytes.length, sha256: sha(bytes) });
    const back = await c.readFile(s.id, 'dir/sub/blob.bin');
    expect(back).toMatchObject({ kind: 'file', size: bytes.length, sha256: sha(bytes) });
    const got: Buffer[] = [];
    for await (const chunk of back.stream) got.push(chunk as Buffer);
    expect(sha(Buffer.concat(got))).toBe(sha(bytes));
    const mbps = (ms: number) => (bytes.length / 1e6 / (ms / 1000)).toFixed(1);
    console.log(`20 MB through the client: upload ${mbps(uploadMs)} MB/s, round trip ${Date.now() - t0} ms`);

    const listing = await c.listFiles(s.id, 'dir');
    const hello = listing.entries.find((e) => e.name === 'hello.txt');
    expect(hello).toMatchObject({ type: 'file', size: 6, mode: '600' });
    expect(listing.entries.find((e) => e.name === 'sub')).toMatchObject({ type: 'directory' });

    const tar = await c.readFile(s.id, 'dir');
    expect(tar.kind).toBe('directory');
    const archive = await bufferOf(tar.stream);
    expect(archive.includes(Buffer.from('hello.txt'))).toBe(true);

    expect(await c.removeFile(s.id, 'dir', { recursive: true })).toMatchObject({ existed: true });
    expect(await c.removeFile(s.id, 'dir', { recursive: true })).toMatchObject({ existed: false });
  });

  it('an upload past 100 MiB is refused as too_large while it streams', async () => {
    const mib = Buffer.alloc(1024 * 1024, 1);
    const tooBig = Readable.from(
      (function* () {
        for (let i = 0; i < 101; i++) yield mib;
      })(),
    );
    const err = await refusal(c.writeFile(s.id, 'big.bin', tooBig));
    expect(err).toMatchObject({ status: 413, code: 'too_large' });
  });

  it('refuses paths outside the sandbox and names missing ones', async () => {
    for (const escape of ['../etc/passwd', '/etc/passwd', 'a/../../x']) {
      const err = await refusal(c.writeFile(s.id, escape, 'x'));
      expect(err).toMatchObject({ status: 400, code: 'invalid_argument' });
    }
    expect(await refusal(c.readFile(s.id, '/etc/shadow'))).toMatchObject({ status: 400 });
    expect(await refusal(c.readFile(s.id, 'no-such-file'))).toMatchObject({ status: 404, code: 'path_not_found' });
  });
});

/**
 * A fetch whose first `times` event streams break after `bytes` bytes (a dropped connection), and
 * that records the Last-Event-ID each reconnect sends.
 */
function dropFirstStreamsAfter(bytes: number, times: number) {
  const state = { dropped: 0, resumedWith: [] as string[] };
  const wrapped: typeof fetch = async (input, init) => {
    const resumeFrom = new Headers(init?.headers).get('last-event-id');
    if (resumeFrom) state.resumedWith.push(resumeFrom);
    const res = await fetch(input, init);
    const isStream = res.headers.get('content-type')?.startsWith('text/event-stream');
    if (!isStream || !res.body || state.dropped >= times) return res;
    state.dropped++;
    const reader = res.body.getReader();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        const room = bytes - sent;
        if (value.length < room) {
          sent += value.length;
          return controller.enqueue(value);
        }
        controller.enqueue(value.subarray(0, room)); // cut mid-message
        controller.error(new TypeError('terminated (connection dropped by the test)'));
        await reader.cancel();
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  return {
    fetch: wrapped,
    get dropped() {
      return state.dropped;
    },
    resumedWith: state.resumedWith,
  };
}

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

function* chunks(b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function bufferOf(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const c of stream) all.push(c as Buffer);
  return Buffer.concat(all);
}
