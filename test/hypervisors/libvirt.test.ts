// libvirt driver against a real libvirtd (started by scripts/start-libvirtd.sh) and the real guest image.
// What every driver guarantees (exec results, timeouts, destroy) is in libvirt-contract.test.ts.
// Run: HOURGLASS_SKIP_GLOBAL_SETUP=1 npx vitest run test/hypervisors/libvirt.test.ts
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadSpecError, BusyError, NotFoundError, NotReadyError } from '../../hypervisors/errors';
import { resolveGuestImage } from '../../hypervisors/guest/image';
import { createLibvirtHypervisor } from '../../hypervisors/libvirt/driver';
import type { Hypervisor } from '../../hypervisors/types';
import { driverSettings } from '../../config/drivers';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const URI = process.env.HOURGLASS_LIBVIRT_URI || 'qemu:///system';
const RUN = `t${Date.now().toString(36)}`; // unique per run: parallel runs never share a domain
const READY_MS = 90_000; // TCG on 2 cores; ~3.5 s when idle

async function virsh(...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', ['-c', URI, ...args], { env: { ...process.env, LC_ALL: 'C' } });
  return stdout;
}

async function domainExists(name: string): Promise<boolean> {
  return virsh('domstate', name).then(
    () => true,
    () => false,
  );
}

let stateDir: string;
let hv: Hypervisor;
const made: string[] = [];

beforeAll(async () => {
  await run('bash', [join(REPO, 'scripts/start-libvirtd.sh'), '120']);
  try {
    await resolveGuestImage();
  } catch {
    await run('npm', ['run', 'image:build'], { cwd: REPO, timeout: 15 * 60_000 });
  }
  stateDir = await mkdtemp(join(tmpdir(), 'hourglass-libvirt-test-'));
  await chmod(stateDir, 0o755); // QEMU runs as libvirt-qemu and must reach the overlays
  hv = createLibvirtHypervisor(driverSettings('libvirt', process.env), stateDir);
}, 20 * 60_000);

afterAll(async () => {
  for (const id of made) await hv?.destroy(id).catch(() => undefined);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

function newId(suffix: string): string {
  const id = `${RUN}-${suffix}`;
  made.push(id);
  return id;
}

describe('LibvirtHypervisor (real libvirtd)', () => {
  it('creates, boots, suspends/resumes with memory kept and destroys a sandbox, leaving nothing', async () => {
    const id = newId('life');
    const progress: string[] = [];
    const info = await hv.create({ id, labels: { owner: 'test' } }, { progress: (d) => progress.push(d) });
    expect(info).toMatchObject({ id, driver: 'libvirt', state: 'running', isolation: 'libvirt-qemu-tcg' });
    expect(info.details.domain).toBe(`hourglass-${id}`);
    expect(progress.length).toBeGreaterThan(0);

    await hv.waitReady(id, READY_MS, { progress: (d) => progress.push(d) });

    const uname = await hv.exec(id, { command: ['uname', '-a'] });
    expect(uname).toMatchObject({ exitCode: 0, timedOut: false });
    expect(uname.stdout).toMatch(/^Linux /);

    await hv.stop(id);
    expect((await hv.describe(id))?.state).toBe('stopped');
    await hv.stop(id); // idempotent
    await expect(hv.exec(id, { command: ['true'] })).rejects.toBeInstanceOf(BusyError);
    await hv.start(id);
    expect((await hv.describe(id))?.state).toBe('running');
    // Suspend kept the guest's memory: a file written before is still in /tmp (a tmpfs).
    await hv.exec(id, { command: ['sh', '-c', 'echo kept > /tmp/marker'] });
    await hv.stop(id);
    await hv.start(id);
    // A new driver instance (a restarted worker) finds the sandbox through libvirt alone.
    const restarted = createLibvirtHypervisor(driverSettings('libvirt', process.env), stateDir);
    expect((await restarted.exec(id, { command: ['cat', '/tmp/marker'] })).stdout).toBe('kept\n');

    expect(await restarted.destroy(id)).toEqual({ existed: true });
    expect(await domainExists(`hourglass-${id}`)).toBe(false);
    expect(await readdir(join(stateDir, 'libvirt'))).toEqual([]);
    if (URI === 'qemu:///system') expect(existsSync(`/var/log/libvirt/qemu/hourglass-${id}.log`)).toBe(false);
  });

  it('create is idempotent by id', async () => {
    const id = newId('idem');
    const first = await hv.create({ id, labels: {} });
    const second = await hv.create({ id, labels: {} });
    expect(second.id).toBe(first.id);
    expect(second.details.domain).toBe(first.details.domain);
    expect((await hv.list()).filter((v) => v.id === id)).toHaveLength(1);

    // A crash between define and start leaves a shut-off domain: a retried create starts it.
    await virsh('destroy', `hourglass-${id}`);
    expect((await hv.describe(id))?.details.libvirtState).toBe('shut off');
    expect((await hv.create({ id, labels: {} })).state).toBe('running');

    expect(await hv.destroy(id)).toEqual({ existed: true });
    expect((await hv.list()).some((v) => v.id === id)).toBe(false);
  });

  it('never lists nor touches a domain it did not create, even one named like ours', async () => {
    const foreignIds = [`${RUN}-foreign`];
    const names = [`hourglass-${foreignIds[0]}`, `${RUN}-other`];
    const xmlFile = join(stateDir, 'foreign.xml');
    try {
      for (const name of names) {
        // Defined, never started; no Hourglass marker in <metadata>.
        await writeFile(
          xmlFile,
          `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory>
           <os><type arch='x86_64' machine='microvm'>hvm</type><kernel>/nonexistent</kernel></os>
           <devices><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>`,
        );
        await virsh('define', xmlFile);
      }
      const listed = await hv.list();
      expect(listed.map((v) => v.details.domain)).not.toContain(names[0]);
      expect(listed.map((v) => v.details.domain)).not.toContain(names[1]);
      expect(await hv.describe(foreignIds[0]!)).toBeNull();
      expect(await hv.destroy(foreignIds[0]!)).toEqual({ existed: false });
      await expect(hv.create({ id: foreignIds[0]!, labels: {} })).rejects.toBeInstanceOf(BadSpecError);
      await expect(hv.stop(foreignIds[0]!)).rejects.toBeInstanceOf(NotFoundError);
      for (const name of names) expect((await virsh('domstate', name)).trim()).toBe('shut off');
      expect(await readdir(join(stateDir, 'libvirt')).catch(() => [])).toEqual([]);
    } finally {
      for (const name of names) await virsh('undefine', name).catch(() => undefined);
      await rm(xmlFile, { force: true });
    }
    for (const name of names) expect(await domainExists(name)).toBe(false);
  });

  it('a guest that never becomes ready gives NotReadyError, and destroy leaves nothing', async () => {
    // No init in the initramfs: the kernel panics, panic=-1 reboots, on_reboot=destroy stops it.
    const broken = createLibvirtHypervisor(
      driverSettings('libvirt', { ...process.env, HOURGLASS_LIBVIRT_EXTRA_KERNEL_ARGS: 'rdinit=/nonexistent' }),
      stateDir,
    );
    const id = newId('never');
    await broken.create({ id, labels: {} });
    // The deadline path: nothing answers within a short wait.
    await expect(broken.waitReady(id, 300)).rejects.toBeInstanceOf(NotReadyError);
    // The dead-guest path: once the domain shuts off, waitReady says so before its deadline.
    const started = Date.now();
    const err = await broken.waitReady(id, 60_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReadyError);
    expect(String((err as Error).message)).toContain(id);
    expect(Date.now() - started).toBeLessThan(60_000);

    expect(await broken.destroy(id)).toEqual({ existed: true });
    expect(await domainExists(`hourglass-${id}`)).toBe(false);
    expect(await readdir(join(stateDir, 'libvirt'))).toEqual([]);
  });

  it('rejects specs it can never satisfy', async () => {
    await expect(hv.create({ id: 'bad id/../x', labels: {} })).rejects.toBeInstanceOf(BadSpecError);
    await expect(hv.create({ id: newId('tmpl'), template: 'nope', labels: {} })).rejects.toBeInstanceOf(BadSpecError);
    await expect(hv.create({ id: newId('mem'), limits: { memoryMiB: 16 }, labels: {} })).rejects.toBeInstanceOf(
      BadSpecError,
    );
  });
});
