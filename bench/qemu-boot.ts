// Prints how long a qemu sandbox takes: create→exec-ready for one and for N at once, exec latency, destroy.
// Usage: npx tsx bench/qemu-boot.ts [concurrent=4] [execs=30]   (needs npm run image:build)
// Boots are CPU-bound under TCG and capped by HOURGLASS_QEMU_MAX_CONCURRENT_BOOTS (default: cores).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQemuHypervisor } from '../hypervisors/qemu/driver';
import type { Hypervisor } from '../hypervisors/types';
import { driverSettings } from '../config/drivers';

const concurrent = Math.max(1, Number(process.argv[2] ?? 4));
const execs = Math.max(1, Number(process.argv[3] ?? 30));

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return (
    `p50 ${at(0.5).toFixed(1)} ms, p95 ${at(0.95).toFixed(1)} ms, min ${s[0]!.toFixed(1)}, max ` +
    `${s.at(-1)!.toFixed(1)} (n=${s.length})`
  );
}

/** create + waitReady; returns ms from the create call to a guest that runs commands. */
async function bootOne(hv: Hypervisor, id: string): Promise<number> {
  const t0 = performance.now();
  await hv.create({ id, labels: { bench: 'qemu-boot' } });
  await hv.waitReady(id, 300_000);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'hg-qemu-bench-'));
  const hv = createQemuHypervisor(driverSettings('qemu', process.env), stateDir);
  const made: string[] = [];
  try {
    // The first create also probes KVM (auto): boot a throwaway VM so the figures below are boots only.
    made.push('warmup');
    await bootOne(hv, 'warmup');
    const info = await hv.describe('warmup');
    const destroyWarmup = performance.now();
    await hv.destroy('warmup');
    console.log(`accelerator: ${info?.isolation}; destroy ${(performance.now() - destroyWarmup).toFixed(1)} ms`);

    made.push('single');
    console.log(`1 sandbox: create→exec-ready ${(await bootOne(hv, 'single')).toFixed(0)} ms`);

    const latencies: number[] = [];
    for (let i = 0; i < execs; i++) {
      const t0 = performance.now();
      const res = await hv.exec('single', { command: ['echo', 'hi'] });
      latencies.push(performance.now() - t0);
      if (res.stdout !== 'hi\n') throw new Error(`sandbox single: echo printed ${JSON.stringify(res.stdout)}`);
    }
    console.log(`exec "echo hi": ${summary(latencies)}`);

    const ids = Array.from({ length: concurrent }, (_, i) => `burst-${i}`);
    made.push(...ids);
    const t0 = performance.now();
    const each = await Promise.all(ids.map((id) => bootOne(hv, id)));
    console.log(
      `${concurrent} sandboxes at once: all exec-ready after ${(performance.now() - t0).toFixed(0)} ms; each ` +
        `${summary(each)}`,
    );

    const destroys: number[] = [];
    for (const id of ['single', ...ids]) {
      const t = performance.now();
      await hv.destroy(id);
      destroys.push(performance.now() - t);
    }
    console.log(`destroy: ${summary(destroys)}`);
  } finally {
    for (const id of made) await hv.destroy(id).catch(() => undefined);
    await hv.close?.();
    await rm(stateDir, { recursive: true, force: true });
  }
}

await main();
