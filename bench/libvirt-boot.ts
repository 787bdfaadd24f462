// Prints how long a libvirt sandbox takes: create, create→exec-ready, exec latency, stop/start, destroy.
// Usage: npx tsx bench/libvirt-boot.ts [sandboxes=3] [execs=20] [parallel=1]
//        (needs root, libvirt, npm run image:build). parallel>1 boots that many at once (TCG: CPU-bound).
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLibvirtHypervisor } from '../hypervisors/libvirt/driver';
import { driverSettings } from '../config/drivers';

const rounds = Number(process.argv[2] ?? 3);
const execs = Number(process.argv[3] ?? 20);
const parallel = Math.max(1, Number(process.argv[4] ?? 1));
const REPO = join(import.meta.dirname, '..');

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return (
    `p50 ${at(0.5).toFixed(0)} ms, p95 ${at(0.95).toFixed(0)} ms, min ${s[0]!.toFixed(0)}, max ` +
    `${s.at(-1)!.toFixed(0)} (n=${s.length})`
  );
}

async function main(): Promise<void> {
  await promisify(execFile)('bash', [join(REPO, 'scripts/start-libvirtd.sh')]);
  const stateDir = await mkdtemp(join(tmpdir(), 'hourglass-libvirt-bench-'));
  await chmod(stateDir, 0o755); // QEMU runs as libvirt-qemu and must reach the overlays
  const hv = createLibvirtHypervisor(driverSettings('libvirt', process.env), stateDir);
  const runId = `bench${Date.now().toString(36)}`;
  const create: number[] = [];
  const ready: number[] = [];
  const exec: number[] = [];
  const stopStart: number[] = [];
  const destroy: number[] = [];
  const one = async (r: number): Promise<void> => {
    const id = `${runId}-${r}`;
    let readyMs = NaN;
    try {
      const t0 = performance.now();
      create.push((await timed(() => hv.create({ id, labels: { bench: 'libvirt-boot' } })))[1]);
      await hv.waitReady(id, 180_000);
      readyMs = performance.now() - t0;
      ready.push(readyMs);
      for (let i = 0; i < execs; i++) {
        const [res, ms] = await timed(() => hv.exec(id, { command: ['true'] }));
        if (res.exitCode !== 0) throw new Error(`sandbox ${id}: true exited ${res.exitCode}`);
        exec.push(ms);
      }
      stopStart.push((await timed(async () => (await hv.stop(id), await hv.start(id))))[1]);
    } finally {
      destroy.push((await timed(() => hv.destroy(id)))[1]);
    }
    console.log(`sandbox ${r + 1}/${rounds}: create→exec-ready ${readyMs.toFixed(0)} ms`);
  };
  try {
    for (let r = 0; r < rounds; r += parallel) {
      const batch = Array.from({ length: Math.min(parallel, rounds - r) }, (_, k) => one(r + k));
      await Promise.all(batch);
    }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
  console.log(
    `libvirt (${process.env.HOURGLASS_LIBVIRT_DOMAIN_TYPE ?? 'qemu'}), ${rounds} sandboxes, ${parallel} at a time:`,
  );
  console.log(`  create (overlay+define+start)  ${summary(create)}`);
  console.log(`  create→exec-ready              ${summary(ready)}`);
  console.log(`  exec 'true' (agent round trip) ${summary(exec)}`);
  console.log(`  stop+start (suspend+resume)    ${summary(stopStart)}`);
  console.log(`  destroy (+undefine, rm)        ${summary(destroy)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
