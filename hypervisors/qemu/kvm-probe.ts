// KVM or TCG for the qemu driver. /dev/kvm can exist and still hang (nested virtualization): the
// only honest test is to boot the real guest under KVM and see the agent answer.
import { constants, readFileSync } from 'node:fs';
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GuestImage } from '../guest/image';
import { readJson, writeJsonAtomic } from '../common/json-file';
import { isAlive, signalIfOurs, waitForExit } from '../common/proc-identity';
import { QgaClient } from './qga';
import { qemuArgs, runDaemonizing } from './launch';
import { readPidfile, type Accel, type QemuProcess } from './state';
import type { OpContext } from '../types';

export interface KvmProbeSettings {
  /** The driver's own directory: the probe result is cached here. */
  dir: string;
  binary: string;
  accel: 'auto' | Accel;
  memoryMiB: number;
  kernelArgs: string;
  kvmProbeTimeoutMs: number;
}

// Probe results per QEMU binary, shared by every driver instance in this process.
const kvmProbes = new Map<string, Promise<Accel>>();

export async function chooseAccel(cfg: KvmProbeSettings, image: GuestImage, ctx: OpContext): Promise<Accel> {
  if (cfg.accel !== 'auto') return cfg.accel;
  let probe = kvmProbes.get(cfg.binary);
  if (!probe) {
    probe = probeKvm(cfg, image, ctx).then((works) => (works ? 'kvm' : 'tcg'));
    kvmProbes.set(cfg.binary, probe);
  }
  return probe;
}

/** Boots the guest under KVM and waits for its agent. Remembered on disk until the host reboots. */
async function probeKvm(cfg: KvmProbeSettings, image: GuestImage, ctx: OpContext): Promise<boolean> {
  if (
    !(await access('/dev/kvm', constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ))
  ) {
    return false;
  }
  const cacheFile = join(cfg.dir, 'kvm-probe.json');
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cached = await readJson<{ bootId: string; binary: string; kvm: boolean }>(cacheFile);
  if (cached && cached.bootId === bootId && cached.binary === cfg.binary) return cached.kvm;

  ctx.progress?.('probing whether KVM works');
  await mkdir(cfg.dir, { recursive: true });
  const dir = await mkdtemp(join(cfg.dir, '.kvm-probe-'));
  const files = {
    console: join(dir, 'console.log'),
    qmp: join(dir, 'qmp.sock'),
    agent: join(dir, 'qga.sock'),
    pidfile: join(dir, 'qemu.pid'),
  };
  let proc: QemuProcess | null = null;
  let works = false;
  try {
    const args = qemuArgs({
      name: 'hourglass-kvm-probe',
      accel: 'kvm',
      memoryMiB: cfg.memoryMiB,
      cpus: 1,
      image,
      kernelArgs: cfg.kernelArgs,
      ...files,
    });
    if ((await runDaemonizing(cfg.binary, args, join(dir, 'qemu.log'))) === 0) {
      proc = await readPidfile(files.pidfile);
      const deadline = Date.now() + cfg.kvmProbeTimeoutMs;
      while (!works && Date.now() < deadline && proc && (await isAlive(proc))) {
        const client = await QgaClient.connect(files.agent, { timeoutMs: 1_000 }).catch(() => null);
        works =
          (await client?.sync({ timeoutMs: 1_000 }).then(
            () => true,
            () => false,
          )) ?? false;
        client?.close();
        if (!works) await sleep(100);
      }
    }
  } finally {
    if (proc) await signalIfOurs(proc, 'SIGKILL');
    if (proc) await waitForExit(proc, 3_000, 10);
    await rm(dir, { recursive: true, force: true });
  }
  await writeJsonAtomic(cacheFile, { bootId, binary: cfg.binary, kvm: works, probedAt: new Date().toISOString() });
  return works;
}
