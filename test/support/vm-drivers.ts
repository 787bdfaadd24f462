// Shared setup for suites that run real VM drivers: the guest image, libvirtd, state dirs, and
// "what does the hypervisor still hold for this sandbox?" checks. Nothing here skips: a missing
// prerequisite fails with a message that says how to provide it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveGuestImage } from '../../hypervisors/guest/image';
import { idTag, vmName } from '../../hypervisors/proxmox/identity';
import type { Hypervisor } from '../../hypervisors/types';
import type { PveSimulator } from '../pve-sim/index';

const run = promisify(execFile);
export const REPO = join(import.meta.dirname, '..', '..');
export const LIBVIRT_URI = process.env.HOURGLASS_LIBVIRT_URI || 'qemu:///system';

/** The guest image of `npm run image:build`; built here when missing (as CI does), never skipped. */
export async function ensureGuestImage(): Promise<void> {
  try {
    resolveGuestImage();
    return;
  } catch {
    // fall through to the build
  }
  try {
    await run('npm', ['run', 'image:build'], { cwd: REPO, timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 });
    resolveGuestImage();
  } catch (err) {
    throw new Error(
      `the guest image is missing and \`npm run image:build\` failed (the VM drivers need it): ${describeError(err)}`,
    );
  }
}

/** Starts virtlogd + libvirtd if they are not running and waits until libvirtd answers. */
export async function ensureLibvirtd(): Promise<void> {
  try {
    await run('bash', [join(REPO, 'scripts/start-libvirtd.sh'), '120'], { timeout: 150_000 });
  } catch (err) {
    throw new Error(
      `libvirtd is not usable on ${LIBVIRT_URI} (scripts/start-libvirtd.sh failed; ` +
        'install libvirt-daemon-system libvirt-clients ' +
        `or run scripts/install-vm-deps.sh): ${describeError(err)}`,
    );
  }
}

/** A state dir QEMU (also when libvirt runs it as libvirt-qemu) can reach. Kept short: socket paths. */
export async function vmStateDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** The env the qemu driver gets: TCG when KVM does not answer within a short probe. */
export function qemuEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOURGLASS_QEMU_ACCEL: process.env.HOURGLASS_QEMU_ACCEL ?? 'auto',
    HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS: process.env.HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS ?? '4000',
    ...extra,
  };
}

/** What the driver itself still reports for a sandbox ("describe" not null). */
async function described(driver: Hypervisor, id: string): Promise<string[]> {
  const info = await driver.describe(id);
  return info
    ? [`${driver.name}.describe(${id}) = ${JSON.stringify({ state: info.state, details: info.details })}`]
    : [];
}

/** Live (non-zombie) processes whose command line mentions `needle`. */
export async function processesMentioning(needle: string): Promise<{ pid: number; cmd: string }[]> {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(needle)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    found.push({ pid: Number(entry), cmd: cmdline.split('\0').slice(0, 3).join(' ') });
  }
  return found;
}

/** Everything a qemu sandbox could leave: the driver's record, a QEMU process, its directory. */
export async function qemuLeftovers(driver: Hypervisor, stateDir: string, id: string): Promise<string[]> {
  const vmDir = join(stateDir, 'qemu', id);
  const procs = (await processesMentioning(vmDir)).filter((p) => /qemu/.test(p.cmd));
  return [
    ...(await described(driver, id)),
    ...procs.map((p) => `QEMU process ${p.pid} (${p.cmd})`),
    ...(existsSync(vmDir) ? [`directory ${vmDir}`] : []),
  ];
}

export async function virsh(...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', ['-c', LIBVIRT_URI, ...args], { env: { ...process.env, LC_ALL: 'C' } });
  return stdout;
}

/** Everything a libvirt sandbox could leave: the driver's view, a domain (any state), an overlay. */
export async function libvirtLeftovers(driver: Hypervisor, stateDir: string, id: string): Promise<string[]> {
  const domain = `hourglass-${id}`;
  const domstate = await virsh('domstate', domain).then(
    (s) => s.trim(),
    () => undefined,
  );
  const dir = join(stateDir, 'libvirt');
  const files = existsSync(dir) ? (await readdir(dir)).filter((f) => f.includes(id)) : [];
  return [
    ...(await described(driver, id)),
    ...(domstate !== undefined ? [`libvirt domain ${domain} (${domstate})`] : []),
    ...files.map((f) => `file ${join(dir, f)}`),
  ];
}

/** Everything a proxmox sandbox could leave: the driver's view, a VM on the simulated PVE. */
export async function proxmoxLeftovers(driver: Hypervisor, sim: PveSimulator, id: string): Promise<string[]> {
  const vms = sim
    .vms()
    .filter(
      (vm) =>
        vm.tags.includes(idTag(id)) ||
        vm.name === vmName(id) ||
        vm.description?.includes(`hourglass-sandbox-id: ${id}`),
    );
  return [...(await described(driver, id)), ...vms.map((vm) => `PVE VM ${vm.vmid} (${vm.name}, ${vm.status})`)];
}

function describeError(err: unknown): string {
  const e = err as { message?: string; stderr?: string };
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').slice(-15).join('\n') : '';
  return `${e.message ?? String(err)}${stderr ? `\n${stderr}` : ''}`;
}
