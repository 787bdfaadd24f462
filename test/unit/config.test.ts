// Driver settings as config/drivers.ts reads them from the environment: defaults, what each variable
// becomes, and a refusal naming the variable for every bad value. No driver is built here.
import { describe, expect, it } from 'vitest';
import { driverSettings } from '../../config/drivers';
import { loadConfig } from '../../config/service';

const PVE = {
  HOURGLASS_PVE_URL: 'https://pve:8006',
  HOURGLASS_PVE_TOKEN: 'hourglass@pve!sandboxes=secret',
  HOURGLASS_PVE_NODE: 'n1',
  HOURGLASS_PVE_TEMPLATES: '9000',
};

describe('which drivers a worker runs', () => {
  it('runs process alone by default, and reads only the enabled drivers’ settings', () => {
    const { drivers } = loadConfig({});
    expect(drivers).toMatchObject({ enabled: ['process'], defaultDriver: 'process', faultRate: 0 });
    expect(Object.keys(drivers.settings)).toEqual(['process']);
  });

  it('takes the first enabled driver as the default unless told otherwise', () => {
    const env = { ...PVE, HOURGLASS_DRIVERS: 'proxmox, process' };
    expect(loadConfig(env).drivers.defaultDriver).toBe('proxmox');
    expect(loadConfig({ ...env, HOURGLASS_DEFAULT_DRIVER: 'process' }).drivers.defaultDriver).toBe('process');
    expect(Object.keys(loadConfig(env).drivers.settings).sort()).toEqual(['process', 'proxmox']);
  });

  it('refuses an unknown driver, a bad fault rate, and an enabled driver missing its settings', () => {
    expect(() => loadConfig({ HOURGLASS_DRIVERS: 'process,firecracker' })).toThrow(
      "HOURGLASS_DRIVERS names unknown driver 'firecracker'; known: process, qemu, libvirt, proxmox",
    );
    expect(() => loadConfig({ HOURGLASS_FAULT_RATE: '2' })).toThrow(
      "HOURGLASS_FAULT_RATE must be a number from 0 to 1 (got '2')",
    );
    expect(() => loadConfig({ HOURGLASS_DRIVERS: 'proxmox' })).toThrow(
      'HOURGLASS_PVE_URL is required for the proxmox driver',
    );
  });
});

describe('process driver settings', () => {
  it('defaults to bubblewrap, no network, the built-in limits', () => {
    expect(driverSettings('process', {})).toEqual({
      isolation: 'bubblewrap',
      network: false,
      networkAllow: [],
      limits: {},
      cgroupParent: undefined,
    });
  });

  it('reads isolation, network, default limits and the cgroup parent', () => {
    const settings = driverSettings('process', {
      HOURGLASS_PROCESS_ISOLATION: 'none',
      HOURGLASS_PROCESS_NETWORK: '1',
      HOURGLASS_PROCESS_NETWORK_ALLOW: '10.1.2.0/24, 192.168.0.7',
      HOURGLASS_PROCESS_CPUS: '0.5',
      HOURGLASS_PROCESS_DISK_MIB: '0',
      HOURGLASS_CGROUP_PARENT: '/system.slice//hourglass/',
    });
    expect(settings).toEqual({
      isolation: 'none',
      network: true,
      networkAllow: ['10.1.2.0/24', '192.168.0.7'],
      limits: { cpus: 0.5, diskMiB: 0 },
      cgroupParent: 'system.slice/hourglass',
    });
  });

  it('refuses bad values and the retired HOURGLASS_PROCESS_BWRAP, naming the variable', () => {
    const refusal = (env: NodeJS.ProcessEnv) => () => driverSettings('process', env);
    expect(refusal({ HOURGLASS_PROCESS_BWRAP: '0' })).toThrow(/^HOURGLASS_PROCESS_BWRAP is no longer read/);
    expect(refusal({ HOURGLASS_PROCESS_ISOLATION: 'off' })).toThrow(
      "HOURGLASS_PROCESS_ISOLATION must be one of bubblewrap, none (got 'off')",
    );
    expect(refusal({ HOURGLASS_PROCESS_NETWORK: 'yes' })).toThrow(
      "HOURGLASS_PROCESS_NETWORK must be one of 0, 1 (got 'yes')",
    );
    expect(refusal({ HOURGLASS_PROCESS_PIDS: 'lots' })).toThrow(
      'HOURGLASS_PROCESS_PIDS must be an integer from 16 to 4194304 (got NaN)',
    );
    expect(refusal({ HOURGLASS_PROCESS_NETWORK_ALLOW: '10.0.0.0/33' })).toThrow(
      "HOURGLASS_PROCESS_NETWORK_ALLOW: '10.0.0.0/33' is not an IPv4 address or CIDR",
    );
    expect(refusal({ HOURGLASS_CGROUP_PARENT: '../escape' })).toThrow(
      /^HOURGLASS_CGROUP_PARENT must be a relative path of names/,
    );
  });
});

describe('qemu and libvirt driver settings', () => {
  it('builds the kernel command line from the TSC frequency and the extra arguments', () => {
    const qemu = driverSettings('qemu', { HOURGLASS_QEMU_TSC_KHZ: '1000', HOURGLASS_QEMU_KERNEL_ARGS: 'rdinit=/x' });
    expect(qemu).toMatchObject({ binary: 'qemu-system-x86_64', accel: 'auto', memoryMiB: 128, cpus: 1 });
    expect(qemu.kernelArgs).toBe('console=ttyS0 quiet panic=-1 tsc_early_khz=1000 tsc=reliable rdinit=/x');
    const libvirt = driverSettings('libvirt', { HOURGLASS_LIBVIRT_EXTRA_KERNEL_ARGS: 'rdinit=/x' });
    expect(libvirt).toMatchObject({ uri: 'qemu:///system', domainType: 'qemu', machine: 'microvm' });
    expect(libvirt.kernelArgs).toBe('console=ttyS0 quiet panic=-1 tsc_early_khz=2300000 tsc=reliable rdinit=/x');
  });

  it('refuses bad values, every one in the same message', () => {
    expect(() => driverSettings('qemu', { HOURGLASS_QEMU_ACCEL: 'fast', HOURGLASS_QEMU_MEMORY_MIB: '0' })).toThrow(
      "HOURGLASS_QEMU_ACCEL must be one of auto, kvm, tcg (got 'fast'); " +
        "HOURGLASS_QEMU_MEMORY_MIB must be a positive integer (got '0')",
    );
    expect(() => driverSettings('libvirt', { HOURGLASS_LIBVIRT_DOMAIN_TYPE: 'xen' })).toThrow(
      "HOURGLASS_LIBVIRT_DOMAIN_TYPE must be one of qemu, kvm (got 'xen')",
    );
  });

  it('refuses the retired per-driver exec timeouts: the exec contract has one default', () => {
    expect(() => driverSettings('qemu', { HOURGLASS_QEMU_EXEC_TIMEOUT_S: '1200' })).toThrow(
      /^HOURGLASS_QEMU_EXEC_TIMEOUT_S is no longer read: an exec's timeout is the request's, 300 s when it gives none/,
    );
    expect(() => driverSettings('libvirt', { HOURGLASS_LIBVIRT_EXEC_TIMEOUT_S: '600' })).toThrow(
      /^HOURGLASS_LIBVIRT_EXEC_TIMEOUT_S is no longer read/,
    );
  });
});

describe('proxmox driver settings', () => {
  it('reads the templates, the TLS opt-out, and the deployment (default: the task queue)', () => {
    const env = { ...PVE, HOURGLASS_PVE_TEMPLATES: '9000, ubuntu=9001', HOURGLASS_PVE_INSECURE_TLS: 'yes' };
    expect(driverSettings('proxmox', { ...env, HOURGLASS_TASK_QUEUE: 'q1' })).toEqual({
      url: 'https://pve:8006',
      token: 'hourglass@pve!sandboxes=secret',
      node: 'n1',
      templates: { default: 9000, ubuntu: 9001 },
      insecureTls: true,
      deployment: 'q1',
    });
    expect(driverSettings('proxmox', PVE)).toMatchObject({ insecureTls: false, deployment: 'hourglass' });
    expect(driverSettings('proxmox', { ...PVE, HOURGLASS_PVE_DEPLOYMENT: 'd' }).deployment).toBe('d');
  });

  it('refuses a malformed token, a blank node and a bad template entry, naming each variable', () => {
    const env = { ...PVE, HOURGLASS_PVE_TOKEN: 'nope', HOURGLASS_PVE_NODE: ' ', HOURGLASS_PVE_TEMPLATES: 'x=5' };
    expect(() => driverSettings('proxmox', env)).toThrow(
      'HOURGLASS_PVE_TOKEN must look like USER@REALM!TOKENID=SECRET; ' +
        'HOURGLASS_PVE_NODE is required for the proxmox driver; ' +
        "HOURGLASS_PVE_TEMPLATES bad entry 'x=5' (want name=vmid, vmid ≥ 100)",
    );
  });
});
