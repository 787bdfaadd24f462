// qemu driver against real QEMU (TCG here: KVM hangs on this kind of machine) and the real guest image.
// What every driver guarantees (exec results, timeouts, destroy) is in qemu-contract.test.ts.
// Run: HOURGLASS_SKIP_GLOBAL_SETUP=1 npx vitest run test/hypervisors/qemu.test.ts
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadSpecError, BusyError, NotReadyError } from '../../hypervisors/errors';
import { defaultGuestImageDir, resolveGuestImage } from '../../hypervisors/guest/image';
import { createQemuHypervisor } from '../../hypervisors/qemu/driver';
import type { Hypervisor } from '../../hypervisors/types';
import { driverSettings } from '../../config/drivers';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const READY_MS = 90_000; // TCG on 2 cores, maybe sharing them with other suites; ~3 s when idle

let stateDir: string;
let env: NodeJS.ProcessEnv;
let hv: Hypervisor;

/** True while a process with this pid runs QEMU for something under our state dir. */
async function qemuRunning(pid: unknown): Promise<boolean> {
  const cmdline = await readFile(`/proc/${String(pid)}/cmdline`, 'utf8').catch(() => '');
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  const zombie = stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  return cmdline.includes(stateDir) && !zombie;
}

beforeAll(async () => {
  try {
    resolveGuestImage();
  } catch {
    // CI exercises the real build rather than skipping: a missing image is built here.
    await run('bash', [join(REPO, 'scripts/build-guest-image.sh')], { timeout: 15 * 60_000 });
  }
  stateDir = await mkdtemp(join(tmpdir(), 'hg-qemu-'));
  env = {
    ...process.env,
    HOURGLASS_QEMU_ACCEL: process.env.HOURGLASS_QEMU_ACCEL ?? 'auto', // exercises the KVM probe
    HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS: process.env.HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS ?? '4000',
  };
  hv = createQemuHypervisor(driverSettings('qemu', env), stateDir);
}, 20 * 60_000);

afterAll(async () => {
  if (!stateDir) return;
  const survivor = createQemuHypervisor(driverSettings('qemu', env), stateDir);
  for (const vm of await survivor.list()) await survivor.destroy(vm.id).catch(() => undefined);
  await survivor.close?.();
  await hv?.close?.();
  await rm(stateDir, { recursive: true, force: true });
});

describe('qemu driver: one sandbox through its life', () => {
  const id = 'life-1';
  let pid: unknown;

  it('creates a microVM on a qcow2 overlay and waits until the guest agent answers', async () => {
    const progress: string[] = [];
    const info = await hv.create({ id, labels: { owner: 'test' } }, { progress: (d) => progress.push(d) });
    expect(info).toMatchObject({ id, driver: 'qemu', state: 'running' });
    expect(info.isolation).toMatch(/^qemu-(tcg|kvm)$/);
    expect(info.details.labels).toEqual({ owner: 'test' });
    pid = info.details.pid;
    expect(await qemuRunning(pid)).toBe(true);
    expect(existsSync(join(stateDir, 'qemu', id, 'overlay.qcow2'))).toBe(true);

    const started = Date.now();
    await hv.waitReady(id, READY_MS, { progress: (d) => progress.push(d) });
    console.log(`create→ready ${Date.now() - started} ms after create (${info.isolation})`);
    expect(progress.some((d) => d.includes(id))).toBe(true);
  });

  it('runs commands as root in the guest, from /', async () => {
    const uname = await hv.exec(id, { command: ['uname', '-a'] });
    expect(uname).toMatchObject({ exitCode: 0, timedOut: false, stderr: '' });
    expect(uname.stdout).toMatch(/^Linux sandbox /);
    const root = await hv.exec(id, { command: ['sh', '-c', 'id -u; echo "$PWD"; echo hi > /root/f; cat /root/f'] });
    expect(root.stdout).toBe('0\n/root\nhi\n'); // commands start in the workspace (guest/vm-exec-plan.ts)

    // Asking again is cheap and must not queue behind the connection the execs keep open.
    const again = Date.now();
    await hv.waitReady(id, 10_000);
    expect(Date.now() - again).toBeLessThan(2_000);
  });

  it('create is idempotent by id', async () => {
    const again = await hv.create({ id, labels: { owner: 'test' } });
    expect(again.details.pid).toBe(pid);
  });

  it('stop pauses the vCPUs and start resumes them with memory intact', async () => {
    await hv.exec(id, { command: ['sh', '-c', 'echo kept > /run/marker'] });
    await hv.stop(id);
    expect((await hv.describe(id))?.state).toBe('stopped');
    await expect(hv.exec(id, { command: ['true'] })).rejects.toBeInstanceOf(BusyError);
    await hv.start(id);
    expect((await hv.describe(id))?.state).toBe('running');
    const marker = await hv.exec(id, { command: ['cat', '/run/marker'] }); // tmpfs: only memory keeps it
    expect(marker.stdout).toBe('kept\n');
  });

  it('a new driver instance on the same state dir (a restarted worker) finds and uses the VM', async () => {
    await hv.close?.();
    hv = createQemuHypervisor(driverSettings('qemu', env), stateDir);
    const listed = await hv.list();
    expect(listed.map((v) => v.id)).toContain(id);
    expect(listed.find((v) => v.id === id)).toMatchObject({ state: 'running', details: { pid } });
    const echo = await hv.exec(id, { command: ['echo', 'still here'] });
    expect(echo.stdout).toBe('still here\n');
  });

  it('a VM whose QEMU died reports stopped, and start boots it again from its overlay', async () => {
    await hv.exec(id, { command: ['sh', '-c', 'echo on-disk > /root/persisted; sync'] });
    process.kill(Number(pid), 'SIGKILL'); // a crash of QEMU itself (or a host reboot)
    await expect.poll(async () => (await hv.describe(id))?.details.process, { timeout: 5_000 }).toBe('exited');
    expect((await hv.describe(id))?.state).toBe('stopped');
    await hv.start(id);
    await hv.waitReady(id, READY_MS);
    const info = await hv.describe(id);
    expect(info?.state).toBe('running');
    expect(info?.details.pid).not.toBe(pid);
    pid = info?.details.pid;
    expect((await hv.exec(id, { command: ['cat', '/root/persisted'] })).stdout).toBe('on-disk\n');
  });

  it('destroy quits QEMU and removes the overlay', async () => {
    const started = Date.now();
    expect(await hv.destroy(id)).toEqual({ existed: true });
    console.log(`destroy ${Date.now() - started} ms`);
    expect(await qemuRunning(pid)).toBe(false);
    expect(existsSync(join(stateDir, 'qemu', id))).toBe(false);
  });
});

describe('qemu driver: specs it cannot satisfy', () => {
  it('rejects an unknown template, too little memory and an unusable id as permanent BadSpecErrors', async () => {
    await expect(hv.create({ id: 'bad-template', template: 'ubuntu', labels: {} })).rejects.toBeInstanceOf(
      BadSpecError,
    );
    await expect(hv.create({ id: 'too-small', limits: { memoryMiB: 32 }, labels: {} })).rejects.toBeInstanceOf(
      BadSpecError,
    );
    await expect(hv.create({ id: '../escape', labels: {} })).rejects.toBeInstanceOf(BadSpecError);
    expect(await hv.describe('bad-template')).toBeNull();
  });

  it('names npm run image:build when the image is missing', async () => {
    const noImage = createQemuHypervisor(
      driverSettings('qemu', { ...env, HOURGLASS_GUEST_IMAGE_DIR: join(stateDir, 'no-image') }),
      stateDir,
    );
    await expect(noImage.create({ id: 'no-image', labels: {} })).rejects.toThrow(/npm run image:build/);
  });
});

describe('qemu driver: guests that never become ready', () => {
  /** An image dir like the real one but with another initrd. */
  async function imageWithInitrd(name: string, makeInitrd: (path: string) => Promise<void>): Promise<string> {
    const real = defaultGuestImageDir();
    const dir = join(stateDir, name);
    await run('mkdir', ['-p', dir]);
    for (const f of ['vmlinuz', 'rootfs.qcow2', 'manifest.json']) await symlink(join(real, f), join(dir, f));
    await makeInitrd(join(dir, 'initrd.img'));
    return dir;
  }

  it('a guest without the agent: NotReadyError after the timeout, and destroy cleans up', async () => {
    // Boots a kernel whose whole userland is a sleeping busybox: nothing answers on the agent port.
    const dir = await imageWithInitrd('image-no-agent', async (initrd) => {
      const root = join(stateDir, 'no-agent-root');
      await run('mkdir', ['-p', join(root, 'bin')]);
      await run('cp', ['/bin/busybox', join(root, 'bin/busybox')]);
      await writeFile(join(root, 'init'), '#!/bin/busybox sh\nexec /bin/busybox sleep 100000\n', { mode: 0o755 });
      await run('sh', ['-c', `cd "${root}" && find . | cpio --quiet -o -H newc > "${initrd}"`]);
    });
    const silent = createQemuHypervisor(driverSettings('qemu', { ...env, HOURGLASS_GUEST_IMAGE_DIR: dir }), stateDir);
    const info = await silent.create({ id: 'no-agent', labels: {} });
    const err = await silent.waitReady('no-agent', 5_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReadyError);
    expect((err as Error).message).toMatch(/no-agent.*guest agent did not answer/);
    expect(await silent.destroy('no-agent')).toEqual({ existed: true });
    expect(await qemuRunning(info.details.pid)).toBe(false);
    expect(existsSync(join(stateDir, 'qemu', 'no-agent'))).toBe(false);
    await silent.close?.();
  });

  it('a guest that panics: NotReadyError at once, naming the exited QEMU', async () => {
    // A garbage initrd: no init, no root disk → kernel panic → reboot → QEMU exits (-no-reboot).
    const dir = await imageWithInitrd('image-panic', (initrd) => writeFile(initrd, 'not an initramfs'));
    const doomed = createQemuHypervisor(driverSettings('qemu', { ...env, HOURGLASS_GUEST_IMAGE_DIR: dir }), stateDir);
    await doomed.create({ id: 'panics', labels: {} });
    const started = Date.now();
    const err = await doomed.waitReady('panics', READY_MS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReadyError);
    expect((err as Error).message).toMatch(/panics.*QEMU process exited/);
    expect(Date.now() - started).toBeLessThan(READY_MS);
    expect((await doomed.describe('panics'))?.details.process).toBe('exited');
    expect(await doomed.destroy('panics')).toEqual({ existed: true });
    expect(existsSync(join(stateDir, 'qemu', 'panics'))).toBe(false);
    await doomed.close?.();
  });
});

describe('qemu driver: concurrent boots', () => {
  it('boots two sandboxes at once and runs a command in each', async () => {
    const ids = ['pair-a', 'pair-b'];
    const started = Date.now();
    await Promise.all(ids.map((id) => hv.create({ id, labels: {} })));
    await Promise.all(ids.map((id) => hv.waitReady(id, READY_MS)));
    console.log(`two concurrent create→ready ${Date.now() - started} ms`);
    const results = await Promise.all(
      ids.map((id) => hv.exec(id, { command: ['cat', '/proc/sys/kernel/random/boot_id'] })),
    );
    expect(results.every((r) => r.exitCode === 0)).toBe(true);
    expect(results[0]?.stdout).not.toBe(results[1]?.stdout); // two separate kernels
    for (const id of ids) expect(await hv.destroy(id)).toEqual({ existed: true });
  });
});
