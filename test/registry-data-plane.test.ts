// The data plane's tables in a real PostgreSQL: the worker's output recorder (order, batching, the
// retained cap, a NOTIFY per write and at the exec's end) and transfers (1 MiB chunks, size and
// sha256, the size cap, a restarted download, pruning).
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { OutputRecorder } from '../activities/output-recorder';
import { EXEC_OUTPUT_CHANNEL, readOutput } from '../registry/exec-output';
import { closeExecsOfDestroyed, getExec, recordExecEnd, recordExecOutcome, recordExecStart } from '../registry/execs';
import { createPool } from '../registry/pool';
import {
  createTransfer,
  deleteStaleTransfers,
  getTransfer,
  readTransferChunks,
  TooLargeError,
  TRANSFER_CHUNK_BYTES,
  TransferIncompleteError,
  TransferWriter,
  writeTransferChunks,
} from '../registry/transfers';

const pool = createPool(inject('databaseUrl'));
afterAll(() => pool.end());

const newId = (what: string) => `${what}-${randomBytes(6).toString('hex')}`;

async function allOutput(sandboxId: string, execId: string) {
  const out = [];
  for (let after = 0; ;) {
    const page = await readOutput(pool, sandboxId, execId, after, 1000);
    if (page.length === 0) return out;
    out.push(...page);
    after = page.at(-1)!.seq;
  }
}

describe('output recorder', () => {
  it('keeps every byte in order with gapless seqs, batching what arrives during a write', async () => {
    const sandboxId = newId('sbx-rec');
    const recorder = new OutputRecorder(pool, sandboxId, 'e1');
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i + 1}\n`);
    lines.forEach((line, i) => recorder.sink(i % 10 === 9 ? 'stderr' : 'stdout', Buffer.from(line)));
    await recorder.drain();
    const chunks = await allOutput(sandboxId, 'e1');
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    // Far fewer rows than writes: output of one stream that arrived while a write was in flight
    // was joined (2,000 runs of one stream here; the very first line is written alone, at once).
    expect(chunks.length).toBeLessThanOrEqual(2001);
    const text = (stream: string) =>
      Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString();
    expect(text('stdout')).toBe(lines.filter((_, i) => i % 10 !== 9).join(''));
    expect(text('stderr')).toBe(lines.filter((_, i) => i % 10 === 9).join(''));
  });

  it('keeps the first maxRetainedBytes, then one notice; the command goes on', async () => {
    const sandboxId = newId('sbx-cap');
    const opts = { maxRetainedBytes: 1000, maxPendingBytes: 1 << 20, chunkBytes: 256, retryDelaysMs: [] };
    const recorder = new OutputRecorder(pool, sandboxId, 'e1', opts);
    for (let i = 0; i < 50; i++) recorder.sink('stdout', Buffer.alloc(100, 'x'));
    await recorder.drain();
    const chunks = await allOutput(sandboxId, 'e1');
    const kept = chunks.filter((c) => c.stream === 'stdout').reduce((n, c) => n + c.data.length, 0);
    expect(kept).toBe(1000);
    expect(chunks.filter((c) => c.stream === 'notice').map((c) => c.data.toString())).toEqual([
      expect.stringContaining('is not kept'),
    ]);
    expect(chunks.every((c) => c.data.length <= 256)).toBe(true);
  });

  it('holds at most maxPendingBytes waiting for the registry; what it drops is said in a notice', async () => {
    const sandboxId = newId('sbx-mem');
    const opts = { maxRetainedBytes: 1 << 20, maxPendingBytes: 1000, chunkBytes: 256, retryDelaysMs: [] };
    const recorder = new OutputRecorder(pool, sandboxId, 'e1', opts);
    // Written in one go: the first 500 bytes go out at once, the next 500 wait, the rest has no room.
    for (let i = 0; i < 10; i++) recorder.sink('stdout', Buffer.alloc(500, 'y'));
    await recorder.drain();
    const chunks = await allOutput(sandboxId, 'e1');
    expect(chunks.filter((c) => c.stream === 'stdout').reduce((n, c) => n + c.data.length, 0)).toBe(1000);
    expect(chunks.filter((c) => c.stream === 'notice').map((c) => c.data.toString())).toEqual([
      '4000 bytes of output were lost here (they came faster than they could be stored)',
    ]);
    expect(recorder.lostBytes).toBe(4000);
  });

  it('holds a command back (pause/resume) instead of dropping, when its driver can', async () => {
    const sandboxId = newId('sbx-flow');
    const opts = { maxRetainedBytes: 1 << 20, maxPendingBytes: 1000, chunkBytes: 256, retryDelaysMs: [] };
    const recorder = new OutputRecorder(pool, sandboxId, 'e1', opts);
    const calls: string[] = [];
    recorder.attach({ pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    for (let i = 0; i < 10; i++) recorder.sink('stdout', Buffer.alloc(500, 'z'));
    await recorder.drain();
    const chunks = await allOutput(sandboxId, 'e1');
    expect(chunks.every((c) => c.stream === 'stdout')).toBe(true);
    expect(chunks.reduce((n, c) => n + c.data.length, 0)).toBe(5000);
    expect(calls).toEqual(['pause', 'resume']);
    expect(recorder.lostBytes).toBe(0);
  });

  it('NOTIFYs followers on new output and when the exec ends, and the row tells killed from exited', async () => {
    const sandboxId = newId('sbx-ntf');
    const listener = new pg.Client({ connectionString: inject('databaseUrl') });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.payload ?? ''));
    await listener.query(`LISTEN ${EXEC_OUTPUT_CHANNEL}`);
    try {
      const record = {
        sandboxId,
        execId: 'e1',
        command: ['sleep', '9'],
        envNames: [],
        startedAt: new Date().toISOString(),
      };
      await recordExecStart(pool, { ...record, mode: 'background' });
      const recorder = new OutputRecorder(pool, sandboxId, 'e1');
      recorder.sink('stdout', Buffer.from('hello\n'));
      await recorder.drain();
      await recordExecOutcome(pool, sandboxId, 'e1', { killRequested: true });
      expect(await getExec(pool, sandboxId, 'e1')).toMatchObject({ mode: 'background', state: 'running' });
      const out = { exitCode: 137, stdout: 'hello\n', stderr: '', durationMs: 5, timedOut: false };
      await recordExecEnd(pool, { ...record, mode: 'background' }, out);
      expect(await getExec(pool, sandboxId, 'e1')).toMatchObject({ state: 'killed', exitCode: 137 });
      const mine = () => heard.filter((p) => p === `${sandboxId} e1`).length;
      await expect.poll(mine).toBe(2); // the output, then the end
    } finally {
      await listener.end();
    }
  });
});

describe('transfers', () => {
  const newTransfer = async (direction: 'upload' | 'download' = 'upload') => {
    const id = newId('tr');
    await createTransfer(pool, { id, sandboxId: newId('sbx-tr'), owner: 'data-plane', direction, path: 'a.bin' });
    return id;
  };

  it('stores a stream in 1 MiB chunks and gives back the same bytes, size and sha256', async () => {
    const id = await newTransfer();
    const bytes = randomBytes(3 * TRANSFER_CHUNK_BYTES + 12345);
    const pieces = async function* () {
      for (let at = 0; at < bytes.length; at += 70_000) yield bytes.subarray(at, at + 70_000);
    };
    const stored = await writeTransferChunks(pool, id, pieces());
    expect(stored).toEqual({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    const back: Buffer[] = [];
    for await (const chunk of readTransferChunks(pool, id)) back.push(chunk);
    expect(back.map((c) => c.length)).toEqual([
      TRANSFER_CHUNK_BYTES,
      TRANSFER_CHUNK_BYTES,
      TRANSFER_CHUNK_BYTES,
      12345,
    ]);
    expect(Buffer.concat(back).equals(bytes)).toBe(true);
  });

  it('refuses a stream past its cap', async () => {
    const id = await newTransfer();
    const pieces = async function* () {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(1000);
    };
    await expect(writeTransferChunks(pool, id, pieces(), 4500)).rejects.toBeInstanceOf(TooLargeError);
  });

  it('a restarted download starts over; finishing records kind, size and sha256; stale ones are pruned', async () => {
    const id = await newTransfer('download');
    const first = new TransferWriter(pool, id);
    await first.write(Buffer.alloc(TRANSFER_CHUNK_BYTES + 10, 1));
    const again = await TransferWriter.restart(pool, id, 100);
    await again.write('tar bytes');
    const done = await again.finish('directory');
    const back: Buffer[] = [];
    for await (const chunk of readTransferChunks(pool, id)) back.push(chunk);
    expect(Buffer.concat(back).toString()).toBe('tar bytes');
    expect(await getTransfer(pool, id)).toMatchObject({ kind: 'directory', size: 9, sha256: done.sha256 });

    await pool.query(`UPDATE transfers SET created_at = now() - interval '2 days' WHERE id = $1`, [id]);
    expect(await deleteStaleTransfers(pool, 24 * 3600)).toBeGreaterThanOrEqual(1);
    expect(await getTransfer(pool, id)).toBeNull();
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM transfer_chunks WHERE transfer_id = $1`, [id]);
    expect(rows[0].n).toBe(0);
  });

  it('a restarted download keeps its cap: past it nothing more is stored', async () => {
    const id = await newTransfer('download');
    const writer = await TransferWriter.restart(pool, id, TRANSFER_CHUNK_BYTES + 10);
    await writer.write(Buffer.alloc(TRANSFER_CHUNK_BYTES, 1));
    await expect(writer.write(Buffer.alloc(11, 2))).rejects.toBeInstanceOf(TooLargeError);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM transfer_chunks WHERE transfer_id = $1`, [id]);
    expect(rows[0].n).toBe(1);
  });

  it('read to the expected size: a chunk missing before it, or bytes past it, throw instead of ending', async () => {
    const id = await newTransfer();
    const bytes = randomBytes(3 * TRANSFER_CHUNK_BYTES);
    await writeTransferChunks(
      pool,
      id,
      (async function* () {
        yield bytes;
      })(),
    );
    const readAll = async (expectedSize: number) => {
      const back: Buffer[] = [];
      for await (const chunk of readTransferChunks(pool, id, expectedSize)) back.push(chunk);
      return Buffer.concat(back);
    };
    expect((await readAll(bytes.length)).equals(bytes)).toBe(true);
    await expect(readAll(bytes.length - 1)).rejects.toThrow(/holds more than/);
    // Deleted mid-copy: the first chunk was read, then the rest went.
    const reading = readTransferChunks(pool, id, bytes.length);
    expect((await reading.next()).value).toHaveLength(TRANSFER_CHUNK_BYTES);
    await pool.query(`DELETE FROM transfer_chunks WHERE transfer_id = $1 AND seq > 1`, [id]);
    await expect(reading.next()).rejects.toThrow(
      new TransferIncompleteError(id, `chunk 2 is missing after ${TRANSFER_CHUNK_BYTES} of ${bytes.length} bytes`),
    );
    // Without the expected size a missing chunk is the end; none expected, none read.
    const rest: Buffer[] = [];
    for await (const chunk of readTransferChunks(pool, id)) rest.push(chunk);
    expect(rest.map((c) => c.length)).toEqual([TRANSFER_CHUNK_BYTES]);
    expect((await readAll(0)).length).toBe(0);
  });
});

describe('commands a terminated workflow left open', () => {
  async function sandboxRow(state: string, updatedSecondsAgo: number): Promise<string> {
    const id = newId('sbx-open');
    await pool.query(
      `INSERT INTO sandboxes (id, driver, state, created_at, seq, owner, updated_at)
       VALUES ($1, 'process', $2, now(), 1, 'registry-data-plane', now() - make_interval(secs => $3))`,
      [id, state, updatedSecondsAgo],
    );
    return id;
  }
  const start = (sandboxId: string, execId: string, mode: 'wait' | 'background') =>
    recordExecStart(pool, {
      sandboxId,
      execId,
      command: ['sleep', '9'],
      envNames: [],
      startedAt: new Date().toISOString(),
      mode,
    });

  it('are closed once their sandbox is long destroyed; a live or just-destroyed sandbox keeps them open', async () => {
    const gone = await sandboxRow('DESTROYED', 600);
    const justGone = await sandboxRow('DESTROYED', 5);
    const live = await sandboxRow('RUNNING', 600);
    await start(gone, 'bg', 'background');
    await start(gone, 'plain', 'wait');
    await start(justGone, 'bg', 'background');
    await start(live, 'bg', 'background');

    expect(await closeExecsOfDestroyed(pool, 120)).toBeGreaterThanOrEqual(2);
    for (const execId of ['bg', 'plain']) {
      const row = await getExec(pool, gone, execId);
      // Worded as the workflow words a destroy: a follower's stream ends with invalid_state.
      expect(row).toMatchObject({
        state: 'failed',
        error: expect.stringMatching(/^interrupted: the sandbox was destroyed while the command ran/),
      });
      expect(row!.finishedAt).not.toBeNull();
    }
    expect(await getExec(pool, justGone, 'bg')).toMatchObject({ state: 'running' });
    expect(await getExec(pool, live, 'bg')).toMatchObject({ state: 'running' });
    // Ended rows are left as they are: a second pass closes none of them again.
    const before = await getExec(pool, gone, 'bg');
    await closeExecsOfDestroyed(pool, 120);
    expect((await getExec(pool, gone, 'bg'))!.finishedAt).toEqual(before!.finishedAt);
  });
});
