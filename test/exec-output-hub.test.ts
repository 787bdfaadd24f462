// The API's exec output hub in a real PostgreSQL: one LISTEN connection for every stream, a wake
// for the streams of the exec that got output, and the caps (per owner: 429; per process: 503).
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ExecOutputHub, ExecStreamLimitError, OwnerExecStreamLimitError } from '../api/execs/output-hub';
import { appendOutput } from '../registry/exec-output';
import { createPool } from '../registry/pool';

const pool = createPool(inject('databaseUrl'));
const hub = new ExecOutputHub(pool, { maxStreams: 3, maxStreamsPerOwner: 2 });
afterAll(async () => {
  await hub.close();
  await pool.end();
});

const watcher = () => {
  const w = { wakes: 0, wake: () => void (w.wakes += 1), close: () => {} };
  return w;
};

describe('exec output hub', () => {
  it('wakes only the streams of the exec that got output', async () => {
    const sandboxId = `sbx-hub-${randomBytes(4).toString('hex')}`;
    const [a, b] = [watcher(), watcher()];
    const stopA = await hub.watch(sandboxId, 'e1', 'hub-owner-1', a);
    const stopB = await hub.watch(sandboxId, 'e2', 'hub-owner-1', b);
    await appendOutput(pool, sandboxId, 'e1', [{ seq: 1, stream: 'stdout', data: Buffer.from('x') }]);
    await expect.poll(() => a.wakes).toBeGreaterThan(0);
    expect(b.wakes).toBe(0);
    stopA();
    stopB();
  });

  it('caps streams per owner (429) before the process cap (503); a closed stream frees its place', async () => {
    const ws = [watcher(), watcher(), watcher(), watcher()];
    const alice1 = await hub.watch('sbx-cap', 'e1', 'hub-alice', ws[0]!);
    await hub.watch('sbx-cap', 'e2', 'hub-alice', ws[1]!);
    await expect(hub.watch('sbx-cap', 'e3', 'hub-alice', ws[2]!)).rejects.toBeInstanceOf(OwnerExecStreamLimitError);
    const bob = await hub.watch('sbx-cap', 'e4', 'hub-bob', ws[2]!);
    await expect(hub.watch('sbx-cap', 'e5', 'hub-carol', ws[3]!)).rejects.toBeInstanceOf(ExecStreamLimitError);
    alice1();
    bob();
    expect(hub.streams).toBe(1);
    const again = await hub.watch('sbx-cap', 'e6', 'hub-alice', ws[3]!);
    expect(hub.streams).toBe(2);
    again();
  });
});
