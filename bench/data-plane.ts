// The process driver's data plane at the driver layer (no API, no database): time to the first
// streamed byte, how long after the command wrote a line it reaches onOutput, streamed-exec
// throughput, and 50 MiB file upload/download rates. Prints figures, asserts nothing.
// Usage: npx tsx bench/data-plane.ts [rounds=5] [isolation=bubblewrap|none]   (as root, with bwrap)
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ProcessHypervisor } from '../hypervisors/process/driver';
import type { Hypervisor } from '../hypervisors/types';
import { seededBytes } from './lib/seeded-bytes';
import { summarize } from './lib/stats';

const rounds = Math.max(1, Number(process.argv[2] ?? 5));
const isolation = process.argv[3] === 'none' ? 'none' : 'bubblewrap';
const MiB = 1024 * 1024;
const id = 'bench-data-plane';

const fmt = (xs: number[]) => {
  const s = summarize(xs);
  return `p50 ${s.p50.toFixed(1)}, p95 ${s.p95.toFixed(1)}, max ${s.max.toFixed(1)} (n=${s.n})`;
};

/** From execStream's call to the first byte in onOutput: the command's start included. */
async function firstByte(hv: Hypervisor): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < rounds * 4; i++) {
    const t0 = performance.now();
    let first = 0;
    await hv.execStream(id, { command: ['sh', '-c', 'printf x; sleep 0.1'] }, () => {
      first ||= performance.now() - t0;
    });
    ms.push(first);
  }
  return ms;
}

/** From the command writing a line (its own clock, `date +%s%N`) to the line reaching onOutput. */
async function writeToReceive(hv: Hypervisor): Promise<number[]> {
  const lags: number[] = [];
  const script = 'i=0; while [ $i -lt 20 ]; do date +%s%N; sleep 0.05; i=$((i + 1)); done';
  for (let r = 0; r < rounds; r++) {
    await hv.execStream(id, { command: ['sh', '-c', script] }, (_s, chunk) => {
      const now = Date.now() + (performance.now() % 1); // ms with a fraction
      for (const line of chunk.toString().split('\n').filter(Boolean)) lags.push(now - Number(line) / 1e6);
    });
  }
  return lags;
}

/** MB/s of a command writing 256 MiB to stdout, all of it handed to onOutput. */
async function streamRate(hv: Hypervisor): Promise<number[]> {
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let bytes = 0;
    const t0 = performance.now();
    await hv.execStream(id, { command: ['head', '-c', String(256 * MiB), '/dev/zero'] }, (_s, c) => {
      bytes += c.length;
    });
    rates.push(bytes / MiB / ((performance.now() - t0) / 1000));
  }
  return rates;
}

async function transfers(hv: Hypervisor): Promise<{ up: number[]; down: number[] }> {
  const up: number[] = [];
  const down: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const source = seededBytes(`bench-${r}`, 50 * MiB);
    let t0 = performance.now();
    await hv.fileSystem.writeFile(id, 'big.bin', source.chunks, {});
    up.push(50 / ((performance.now() - t0) / 1000));
    const hash = createHash('sha256');
    t0 = performance.now();
    await hv.fileSystem.readFile(id, 'big.bin', async (c) => void hash.update(c));
    down.push(50 / ((performance.now() - t0) / 1000));
    if (hash.digest('hex') !== source.sha256()) throw new Error('the file read back differs from the one written');
  }
  return { up, down };
}

const stateDir = await mkdtemp(path.join(os.tmpdir(), 'hg-bench-dp-'));
await chmod(stateDir, 0o711); // without isolation, commands (uid 65534) reach the workspace through it
const hv = new ProcessHypervisor({ stateDir, isolation, limits: { diskMiB: 512, memoryMiB: 512 } });
try {
  await hv.create({ id, labels: {} });
  await hv.waitReady(id, 10_000);
  console.log(`process driver (${isolation}), ${rounds} rounds`);
  console.log(`first streamed byte after execStream (ms):        ${fmt(await firstByte(hv))}`);
  console.log(`line written → onOutput (ms):                     ${fmt(await writeToReceive(hv))}`);
  console.log(`streamed exec, 256 MiB of stdout (MB/s):          ${fmt(await streamRate(hv))}`);
  const { up, down } = await transfers(hv);
  console.log(`50 MiB upload, writeFile (MB/s):                  ${fmt(up)}`);
  console.log(`50 MiB download, readFile (MB/s):                 ${fmt(down)}`);
} finally {
  await hv.destroy(id).catch(() => undefined);
  await hv.close();
  await rm(stateDir, { recursive: true, force: true });
}
