// The files update's activity (activities/files.ts) over a real process sandbox and a real
// PostgreSQL: an upload cut short never replaces the file, a read past the transfer cap fails
// with too_large before it fills the registry, a listing stays small enough for workflow history.
import { createHash, randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createFileActivities } from '../activities/files';
import { HypervisorSet } from '../hypervisors/index';
import { createPool } from '../registry/pool';
import { createTransfer, MAX_TRANSFER_BYTES, writeTransferChunks } from '../registry/transfers';
import type { FileOp, FileOpResult } from '../workflows/types';
import { processDrivers } from './support/process-drivers';

const pool = createPool(inject('databaseUrl'));
afterAll(() => pool.end());
const MiB = 1024 * 1024;

describe('files activity', () => {
  const { driver } = processDrivers('hg-file-act', { limits: { diskMiB: 256, tmpMiB: 16 } });
  const setUp = async () => {
    const hv = driver();
    const id = `fa-${randomBytes(4).toString('hex')}`;
    await hv.create({ id, labels: {} });
    const { fileOp } = createFileActivities({
      pool,
      hypervisors: new HypervisorSet(new Map([['process', hv]]), 'process'),
    });
    const op = (o: FileOp): Promise<FileOpResult> =>
      new MockActivityEnvironment().run(fileOp, { id, driver: 'process', op: o });
    const transfer = async (direction: 'upload' | 'download', bytes?: Buffer) => {
      const transferId = `tr-${randomBytes(6).toString('hex')}`;
      await createTransfer(pool, { id: transferId, sandboxId: id, owner: 'file-activities', direction, path: 'f' });
      if (!bytes) return { transferId, size: 0, sha256: '' };
      const stored = await writeTransferChunks(
        pool,
        transferId,
        (async function* () {
          yield bytes;
        })(),
      );
      return { transferId, ...stored };
    };
    return { hv, id, op, transfer };
  };

  it('an upload whose transfer lost a chunk fails (bad_spec) and leaves the original file intact', async () => {
    const { hv, id, op, transfer } = await setUp();
    const original = await transfer('upload', Buffer.from('original'));
    expect(await op({ op: 'write', path: 'f.bin', ...original })).toMatchObject({ op: 'write', size: 8 });
    const big = await transfer('upload', randomBytes(3 * MiB + 5));
    await pool.query(`DELETE FROM transfer_chunks WHERE transfer_id = $1 AND seq = 3`, [big.transferId]);
    const failed = op({ op: 'write', path: 'f.bin', ...big });
    await expect(failed).rejects.toBeInstanceOf(ApplicationFailure);
    await expect(failed).rejects.toMatchObject({ type: 'bad_spec', nonRetryable: true, message: /chunk 3 is missing/ });
    const now = await hv.exec(id, { command: ['sh', '-c', 'cat f.bin; ls -a | grep -c hourglass || true'] });
    expect(now.stdout).toBe('original0\n');
  }, 60_000);

  it('a read past the transfer cap fails with too_large and stores no more than the cap', async () => {
    const { hv, id, op, transfer } = await setUp();
    await hv.exec(id, { command: ['sh', '-c', 'truncate -s 1T sparse.bin'] });
    const { transferId } = await transfer('download');
    const failed = op({ op: 'read', path: 'sparse.bin', transferId });
    await expect(failed).rejects.toMatchObject({ type: 'too_large', nonRetryable: true });
    const { rows } = await pool.query(
      `SELECT coalesce(sum(length(data)), 0)::float8 AS n FROM transfer_chunks WHERE transfer_id = $1`,
      [transferId],
    );
    expect(rows[0].n).toBeLessThanOrEqual(MAX_TRANSFER_BYTES);
    // A file within the cap reads whole.
    const small = await transfer('download');
    const bytes = Buffer.from('hello');
    await op({ op: 'write', path: 'small.txt', ...(await transfer('upload', bytes)) });
    expect(await op({ op: 'read', path: 'small.txt', transferId: small.transferId })).toMatchObject({
      kind: 'file',
      size: 5,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }, 120_000);

  it('refuses a setuid mode; a listing of many long names stays under 256 KiB of JSON', async () => {
    const { hv, id, op, transfer } = await setUp();
    const up = await transfer('upload', Buffer.from('#!/bin/sh\n'));
    await expect(op({ op: 'write', path: 'suid', mode: 0o4755, ...up })).rejects.toMatchObject({ type: 'bad_spec' });
    const long = 'x'.repeat(200);
    const make = `mkdir d && cd d && i=0; while [ $i -lt 2000 ]; do : > "${long}-$((10000 + i))"; i=$((i + 1)); done`;
    await hv.exec(id, { command: ['sh', '-c', make], timeoutSeconds: 60 });
    const listed = await op({ op: 'list', path: 'd', limit: 10_000 });
    expect(listed).toMatchObject({ op: 'list', truncated: true });
    expect(Buffer.byteLength(JSON.stringify(listed))).toBeLessThanOrEqual(256 * 1024 + 100);
    expect(listed.op === 'list' && listed.entries.length).toBeGreaterThan(500);
  }, 60_000);
});
