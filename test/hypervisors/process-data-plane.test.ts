// The data plane (data-plane-contract.ts) on the process driver, with bubblewrap and without
// isolation; then what the contract cannot see from outside: slow readers, failing sources and
// sinks, cancelled transfers.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import { seededBytes } from '../../bench/lib/seeded-bytes';
import { processDrivers } from '../support/process-drivers';
import { dataPlaneContract } from './data-plane-contract';

/** The workspace holds the 50 MiB file and its replacement beside it. */
const LIMITS = { memoryMiB: 256, pids: 128, tmpMiB: 16, diskMiB: 256 };
const MiB = 1024 * 1024;

// In-process commands (HOURGLASS_SPAWNER=0) run the same contract: process-data-plane-in-process.test.ts.
for (const isolation of ['bubblewrap', 'none'] as const) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), `hg-dp-${isolation}-`));
  // Without isolation, commands (uid 65534) reach the workspace by its host path: let them pass.
  chmodSync(stateDir, 0o711);
  dataPlaneContract(`process (${isolation})`, () => new ProcessHypervisor({ stateDir, isolation, limits: LIMITS }), {
    cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
  });
}

describe('process driver: transfers under pressure', () => {
  const { driver } = processDrivers('hg-dp-pressure', { limits: LIMITS });
  const leftovers = async (hv: ProcessHypervisor, id: string) => {
    const r = await hv.exec(id, { command: ['sh', '-c', 'ls -a /work | grep hourglass || true'] });
    return r.stdout;
  };

  it('a slow reader gets every byte in order, also those still in the pipe when the command exited', async () => {
    const hv = driver();
    await hv.create({ id: 's1', labels: {} });
    const source = seededBytes('slow-reader', 24 * MiB);
    await hv.fileSystem.writeFile('s1', 'f.bin', source.chunks, {});
    const hash = createHash('sha256');
    let got = 0;
    const r = await hv.fileSystem.readFile('s1', 'f.bin', async (c) => {
      await sleep(2); // ~50 chunks/s of 64 KiB: cat finishes long before the reader
      hash.update(c);
      got += c.length;
    });
    expect(r).toMatchObject({ kind: 'file', size: 24 * MiB });
    expect(got).toBe(24 * MiB);
    expect(hash.digest('hex')).toBe(source.sha256());
  }, 120_000);

  it('a failing reader ends the command and is the error', async () => {
    const hv = driver();
    await hv.create({ id: 's2', labels: {} });
    await hv.fileSystem.writeFile('s2', 'f.bin', seededBytes('x', 8 * MiB).chunks, {});
    let calls = 0;
    const reading = hv.fileSystem.readFile('s2', 'f.bin', async () => {
      if (++calls === 3) throw new Error('the reader went away');
    });
    await expect(reading).rejects.toThrow('the reader went away');
    // Shell builtins only: a `cat` here would count itself.
    const countCats =
      'n=0; for f in /proc/[0-9]*/comm; do read -r c < "$f" && [ "$c" = cat ] && n=$((n+1)); done; echo $n';
    const cats = () => hv.exec('s2', { command: ['sh', '-c', countCats] }).then((r) => r.stdout.trim());
    await expect.poll(cats, { timeout: 5_000 }).toBe('0');
  }, 60_000);

  it('a failing source leaves neither the file nor a temporary one', async () => {
    const hv = driver();
    await hv.create({ id: 's3', labels: {} });
    async function* failing() {
      yield Buffer.alloc(MiB, 1);
      yield Buffer.alloc(MiB, 2);
      throw new Error('the upload was cut');
    }
    await expect(hv.fileSystem.writeFile('s3', 'f.bin', failing(), {})).rejects.toThrow('the upload was cut');
    expect(await leftovers(hv, 's3')).toBe('');
    const list = await hv.fileSystem.listFiles('s3', '.', { limit: 100 });
    expect(list.entries.map((e) => e.name)).not.toContain('f.bin');
  }, 60_000);

  it('a cancelled upload stops, keeps the old file whole and leaves no temporary file', async () => {
    const hv = driver();
    await hv.create({ id: 's4', labels: {} });
    await hv.fileSystem.writeFile(
      's4',
      'f.txt',
      (async function* () {
        yield Buffer.from('old');
      })(),
      {},
    );
    const abort = new AbortController();
    async function* endless() {
      for (let i = 0; ; i++) {
        if (i === 5) abort.abort(new Error('lease ended'));
        yield Buffer.alloc(MiB, i);
        await sleep(10);
      }
    }
    await expect(hv.fileSystem.writeFile('s4', 'f.txt', endless(), {}, { signal: abort.signal })).rejects.toThrow();
    expect(await leftovers(hv, 's4')).toBe('');
    const parts: Buffer[] = [];
    await hv.fileSystem.readFile('s4', 'f.txt', async (c) => void parts.push(c));
    expect(Buffer.concat(parts).toString()).toBe('old');
  }, 60_000);

  it('a read past maxBytes stops at once, a 1 TB sparse file and a growing one alike: too_large', async () => {
    const hv = driver();
    await hv.create({ id: 's7', labels: {} });
    await hv.exec('s7', { command: ['sh', '-c', 'truncate -s 1T sparse.bin'] });
    // A file that grows as fast as the sandbox can write it.
    const grower = hv.exec('s7', { command: ['sh', '-c', 'yes > growing.txt'], timeoutSeconds: 60 });
    await expect
      .poll(async () => (await hv.exec('s7', { command: ['stat', '-c', '%s', 'growing.txt'] })).stdout)
      .not.toBe('');
    for (const p of ['sparse.bin', 'growing.txt']) {
      const started = Date.now();
      let got = 0;
      const reading = hv.fileSystem.readFile('s7', p, async (c) => void (got += c.length), undefined, {
        maxBytes: 8 * MiB,
      });
      await expect(reading, p).rejects.toMatchObject({ code: 'too_large', permanent: true });
      expect(got).toBeLessThanOrEqual(8 * MiB);
      expect(Date.now() - started, p).toBeLessThan(10_000);
    }
    await hv.destroy('s7');
    await grower.catch(() => undefined);
  }, 60_000);

  it('an onOutput that throws ends the command; execStream rejects with its error', async () => {
    const hv = driver();
    await hv.create({ id: 's6', labels: {} });
    const started = Date.now();
    const streaming = hv.execStream('s6', { command: ['sh', '-c', 'echo one; sleep 30'] }, () => {
      throw new Error('the consumer broke');
    });
    await expect(streaming).rejects.toThrow('the consumer broke');
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('execStream stdin cannot reach a command through a closed stdin; the result is the command’s', async () => {
    const hv = driver();
    await hv.create({ id: 's5', labels: {} });
    // `true` never reads: a big stdin must neither hang nor fail the exec.
    const r = await hv.execStream('s5', { command: ['true'], stdin: Buffer.alloc(4 * MiB) }, () => undefined);
    expect(r).toMatchObject({ exitCode: 0, timedOut: false });
  }, 30_000);
});
