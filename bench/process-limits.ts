// Process sandboxes with their confinement, at scale: what each mechanism costs per create, then N
// sandboxes (default 1000) created with limits, `true` run in each, all destroyed — and a check that
// nothing is left behind (cgroups, mounts, loop devices, processes). Prints figures, asserts nothing.
// Usage: npx tsx bench/process-limits.ts [N=1000] [concurrency=16]   (as root, with bwrap and slirp4netns)
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readMounts } from '../hypervisors/process/mountinfo';
import { ProcessHypervisor, type ProcessOptions } from '../hypervisors/process/driver';

const total = Math.max(1, Number(process.argv[2] ?? 1000));
const concurrency = Math.max(1, Number(process.argv[3] ?? 16));
const cgroupParent = `hourglass-bench-${process.pid}`;

function stats(ms: number[]): string {
  if (ms.length === 0) return 'none';
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return (
    `p50 ${at(0.5).toFixed(1)} ms, p95 ${at(0.95).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, ` +
    `max ${s.at(-1)!.toFixed(1)} ms (n=${s.length})`
  );
}

/** Runs fn over items, `limit` at a time; returns each item's duration and the failures. */
async function timedPool<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>) {
  const durations: number[] = [];
  const failures: string[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        const t0 = performance.now();
        try {
          await fn(item);
          durations.push(performance.now() - t0);
        } catch (err) {
          failures.push(`${String(item)}: ${(err as Error).message}`);
        }
      }
    }),
  );
  return { durations, failures, wallMs: performance.now() - started };
}

async function newDriver(opts: Partial<ProcessOptions>): Promise<{ driver: ProcessHypervisor; stateDir: string }> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'hg-limits-bench-'));
  return { driver: new ProcessHypervisor({ stateDir, cgroupParent, ...opts }), stateDir };
}

/** Sequential create/destroy of a few sandboxes in one configuration: the cost of what it adds. */
async function mechanismCost(label: string, opts: Partial<ProcessOptions>, n = 30): Promise<void> {
  const { driver, stateDir } = await newDriver(opts);
  await driver.create({ id: 'warmup', labels: {} }); // makes the workspace template once
  await driver.destroy('warmup');
  const creates: number[] = [];
  const destroys: number[] = [];
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    await driver.create({ id: `m${i}`, labels: {} });
    creates.push(performance.now() - t0);
    t0 = performance.now();
    await driver.destroy(`m${i}`);
    destroys.push(performance.now() - t0);
  }
  const p50 = (ms: number[]) => [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!.toFixed(1);
  console.log(`  ${label.padEnd(58)} create p50 ${p50(creates)} ms, destroy p50 ${p50(destroys)} ms`);
  await driver.close();
  await rm(stateDir, { recursive: true, force: true });
}

/** What is left on the host of a run in `stateDir`: cgroups, mounts, loop devices, processes. */
async function leftovers(stateDir: string): Promise<string[]> {
  const left: string[] = [];
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const parent = path.join('/sys/fs/cgroup', hierarchy, cgroupParent);
    if (!existsSync(parent)) continue;
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        left.push(`cgroup ${path.join(dir, e.name)}`);
        walk(path.join(dir, e.name));
      }
    };
    walk(parent);
  }
  for (const m of await readMounts()) if (m.mountPoint.startsWith(stateDir)) left.push(`mount ${m.mountPoint}`);
  for (const dev of readdirSync('/sys/block').filter((d) => d.startsWith('loop'))) {
    try {
      const backing = readFileSync(`/sys/block/${dev}/loop/backing_file`, 'utf8').trim();
      if (backing.startsWith(stateDir)) left.push(`loop device /dev/${dev} on ${backing}`);
    } catch {
      /* not attached */
    }
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmdline.includes(stateDir) && state !== 'Z') {
        left.push(`process ${pid}: ${cmdline.split('\0').slice(0, 2).join(' ')}`);
      }
    } catch {
      /* exited */
    }
  }
  return left;
}

/** Memory and tasks charged to all sandboxes together: their common parent cgroup's counters. */
async function chargedToSandboxes(driver: ProcessHypervisor, anyId: string): Promise<string> {
  const dirs = ((await driver.describe(anyId))?.details.cgroups as string[] | undefined) ?? [];
  const read = (file: string) => {
    for (const dir of dirs) {
      try {
        return Number(readFileSync(path.join(path.dirname(dir), file), 'utf8'));
      } catch {
        /* another hierarchy */
      }
    }
    return NaN;
  };
  const memory = read('memory.current') || read('memory.usage_in_bytes');
  return `${(memory / 2 ** 20).toFixed(0)} MiB of memory and ${read('pids.current')} tasks charged to their cgroups`;
}

function removeBenchParent(): void {
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    try {
      rmdirSync(path.join('/sys/fs/cgroup', hierarchy, cgroupParent));
    } catch {
      /* absent, or not empty: reported by leftovers() */
    }
  }
}

async function main(): Promise<void> {
  const probe = await newDriver({});
  console.log(probe.driver.summary());
  console.log(
    `host: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${os.release()}`,
  );
  await rm(probe.stateDir, { recursive: true, force: true });

  console.log('\nPer-create cost of each mechanism (30 sequential create+destroy each, after one warm-up):');
  await mechanismCost('none: cgroup only (no namespaces, no workspace quota)', {
    isolation: 'none',
    limits: { diskMiB: 0 },
  });
  await mechanismCost('bubblewrap holder + seccomp + cgroup (no workspace quota)', { limits: { diskMiB: 0 } });
  await mechanismCost('bubblewrap + cgroup + 1024 MiB ext4 workspace (the default)', {});
  await mechanismCost('bubblewrap + cgroup + workspace + slirp4netns network', { network: true });

  const { driver, stateDir } = await newDriver({});
  const ids = Array.from({ length: total }, (_, i) => `sbx-${String(i).padStart(5, '0')}`);
  console.log(`\n${total} sandboxes (default limits, no network), ${concurrency} at a time:`);
  const wall = performance.now();
  const created = await timedPool(ids, concurrency, (id) => driver.create({ id, labels: { bench: 'process-limits' } }));
  console.log(
    `  create  ${stats(created.durations)}; wall ${(created.wallMs / 1000).toFixed(1)} s; ` +
      `failed ${created.failures.length}`,
  );
  console.log(`  with ${created.durations.length} sandboxes running: ${await chargedToSandboxes(driver, ids[0]!)}`);
  const execs = await timedPool(ids, concurrency, async (id) => {
    const r = await driver.exec(id, { command: ['true'], timeoutSeconds: 60 });
    if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.stderr.trim()}`);
  });
  console.log(
    `  exec    ${stats(execs.durations)}; wall ${(execs.wallMs / 1000).toFixed(1)} s; failed ${execs.failures.length}`,
  );
  const destroyed = await timedPool(ids, concurrency, (id) => driver.destroy(id));
  console.log(
    `  destroy ${stats(destroyed.durations)}; wall ${(destroyed.wallMs / 1000).toFixed(1)} s; ` +
      `failed ${destroyed.failures.length}`,
  );
  console.log(`  total wall ${((performance.now() - wall) / 1000).toFixed(1)} s`);
  for (const f of [...created.failures, ...execs.failures, ...destroyed.failures].slice(0, 10)) {
    console.log(`  miss: ${f}`);
  }

  // Retry what failed, so the leftover check says whether anything leaks, not whether a call failed.
  for (const vm of await driver.list()) {
    await driver.destroy(vm.id).catch((err) => console.log(`  destroy retry ${vm.id}: ${err.message}`));
  }
  await driver.close();
  removeBenchParent();
  const left = await leftovers(stateDir);
  console.log(
    `\nleft behind: ${left.length === 0 ? 'nothing (cgroups, mounts, loop devices, processes all gone)' : left.length}`,
  );
  for (const l of left.slice(0, 20)) console.log(`  ${l}`);
  await rm(stateDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
