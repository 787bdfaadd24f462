// Each driver's settings: one zod schema per driver, parsed once at start-up for the enabled drivers
// only (a worker without proxmox needs no PVE token). Drivers get these typed objects, never the env.
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_EXEC_TIMEOUT_SECONDS } from '../hypervisors/guest/contract';
import { parseAllowList } from '../hypervisors/process/egress';
import { checkCgroupParent, ISOLATION_MODES, limitProblems } from '../hypervisors/process/config';
import type { SandboxLimits } from '../hypervisors/types';
import { intVar, oneOfVar, optionalTextVar, parseEnv, textVar } from './variables';

const PROCESS_LIMIT_VARS = {
  cpus: 'HOURGLASS_PROCESS_CPUS',
  memoryMiB: 'HOURGLASS_PROCESS_MEMORY_MIB',
  pids: 'HOURGLASS_PROCESS_PIDS',
  tmpMiB: 'HOURGLASS_PROCESS_TMP_MIB',
  diskMiB: 'HOURGLASS_PROCESS_DISK_MIB',
} as const satisfies Record<keyof SandboxLimits, string>;

/** A setting no longer read: refused while set, so nobody believes it still works. */
const retired = (instead: string) =>
  z
    .string()
    .optional()
    .refine((v) => v === undefined, { message: `is no longer read: ${instead}; unset it` });

const EXEC_TIMEOUT_NOW = `an exec's timeout is the request's, ${DEFAULT_EXEC_TIMEOUT_SECONDS} s when it gives none`;

const processSchema = z
  .object({
    HOURGLASS_PROCESS_BWRAP: retired(
      'process sandboxes always use bubblewrap unless HOURGLASS_PROCESS_ISOLATION=none opts out explicitly',
    ),
    HOURGLASS_PROCESS_ISOLATION: oneOfVar(ISOLATION_MODES, 'bubblewrap'),
    HOURGLASS_PROCESS_NETWORK: oneOfVar(['0', '1'], '0'),
    HOURGLASS_PROCESS_NETWORK_ALLOW: z.string().optional(),
    HOURGLASS_CGROUP_PARENT: optionalTextVar,
    ...Object.fromEntries(Object.values(PROCESS_LIMIT_VARS).map((name) => [name, z.string().optional()])),
  })
  .transform((e, ctx) => {
    const limits: SandboxLimits = {};
    for (const [field, name] of Object.entries(PROCESS_LIMIT_VARS) as [keyof SandboxLimits, string][]) {
      const raw = (e as Record<string, string | undefined>)[name];
      if (raw !== undefined && raw !== '') limits[field] = Number(raw);
    }
    try {
      const problems = limitProblems(limits, (f) => PROCESS_LIMIT_VARS[f]);
      if (problems.length) throw new Error(problems.join('; '));
      return {
        isolation: e.HOURGLASS_PROCESS_ISOLATION,
        network: e.HOURGLASS_PROCESS_NETWORK === '1',
        networkAllow: parseAllowList(e.HOURGLASS_PROCESS_NETWORK_ALLOW),
        limits,
        cgroupParent: e.HOURGLASS_CGROUP_PARENT && checkCgroupParent(e.HOURGLASS_CGROUP_PARENT),
      };
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const qemuSchema = z
  .object({
    HOURGLASS_QEMU_EXEC_TIMEOUT_S: retired(EXEC_TIMEOUT_NOW),
    HOURGLASS_QEMU_ACCEL: oneOfVar(['auto', 'kvm', 'tcg'], 'auto'),
    HOURGLASS_QEMU_BINARY: textVar('qemu-system-x86_64'),
    HOURGLASS_QEMU_MEMORY_MIB: intVar(128, 1),
    HOURGLASS_QEMU_CPUS: intVar(1, 1),
    HOURGLASS_QEMU_MAX_CONCURRENT_BOOTS: intVar(availableParallelism(), 1),
    HOURGLASS_GUEST_IMAGE_DIR: optionalTextVar,
    // Without a given TSC frequency, guests booting side by side under TCG hang in PIT calibration.
    HOURGLASS_QEMU_TSC_KHZ: intVar(0, 1), // 0: read from /proc/cpuinfo
    HOURGLASS_QEMU_KERNEL_ARGS: z.string().optional(),
    HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS: intVar(8_000, 1),
    HOURGLASS_QEMU_BOOT_SLOT_TIMEOUT_MS: intVar(120_000, 1),
    HOURGLASS_QEMU_AGENT_IDLE_MS: intVar(30_000, 1),
  })
  .transform((e) => ({
    binary: e.HOURGLASS_QEMU_BINARY,
    accel: e.HOURGLASS_QEMU_ACCEL,
    memoryMiB: e.HOURGLASS_QEMU_MEMORY_MIB,
    cpus: e.HOURGLASS_QEMU_CPUS,
    maxConcurrentBoots: e.HOURGLASS_QEMU_MAX_CONCURRENT_BOOTS,
    imageDir: e.HOURGLASS_GUEST_IMAGE_DIR,
    kernelArgs: [
      'console=ttyS0 quiet panic=-1',
      `tsc_early_khz=${e.HOURGLASS_QEMU_TSC_KHZ || hostTscKhz()} tsc=reliable`,
      e.HOURGLASS_QEMU_KERNEL_ARGS ?? '',
    ]
      .join(' ')
      .trim(),
    kvmProbeTimeoutMs: e.HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS,
    bootSlotTimeoutMs: e.HOURGLASS_QEMU_BOOT_SLOT_TIMEOUT_MS,
    agentIdleMs: e.HOURGLASS_QEMU_AGENT_IDLE_MS,
  }));

// The tsc options keep concurrently booting guests from hanging in PIT calibration (TCG).
const LIBVIRT_KERNEL_ARGS = 'console=ttyS0 quiet panic=-1 tsc_early_khz=2300000 tsc=reliable';

const libvirtSchema = z
  .object({
    HOURGLASS_LIBVIRT_EXEC_TIMEOUT_S: retired(EXEC_TIMEOUT_NOW),
    HOURGLASS_LIBVIRT_URI: textVar('qemu:///system'),
    HOURGLASS_LIBVIRT_MEMORY_MIB: intVar(128, 1),
    HOURGLASS_LIBVIRT_CPUS: intVar(1, 1),
    HOURGLASS_LIBVIRT_DOMAIN_TYPE: oneOfVar(['qemu', 'kvm'], 'qemu'),
    HOURGLASS_LIBVIRT_MACHINE: textVar('microvm'),
    HOURGLASS_LIBVIRT_KERNEL_ARGS: textVar(LIBVIRT_KERNEL_ARGS),
    HOURGLASS_LIBVIRT_EXTRA_KERNEL_ARGS: z.string().optional(),
    HOURGLASS_LIBVIRT_IMAGE_DIR: optionalTextVar,
    HOURGLASS_LIBVIRT_EMULATOR: optionalTextVar,
  })
  .transform((e) => ({
    uri: e.HOURGLASS_LIBVIRT_URI,
    memoryMiB: e.HOURGLASS_LIBVIRT_MEMORY_MIB,
    cpus: e.HOURGLASS_LIBVIRT_CPUS,
    domainType: e.HOURGLASS_LIBVIRT_DOMAIN_TYPE,
    machine: e.HOURGLASS_LIBVIRT_MACHINE,
    kernelArgs: `${e.HOURGLASS_LIBVIRT_KERNEL_ARGS} ${e.HOURGLASS_LIBVIRT_EXTRA_KERNEL_ARGS ?? ''}`.trim(),
    imageDir: e.HOURGLASS_LIBVIRT_IMAGE_DIR,
    emulator: e.HOURGLASS_LIBVIRT_EMULATOR,
  }));

const required = () =>
  z
    .string({ required_error: `is required for the proxmox driver` })
    .transform((v) => v.trim())
    .refine((v) => v !== '', { message: `is required for the proxmox driver` });

const proxmoxSchema = z
  .object({
    HOURGLASS_PVE_URL: required(),
    HOURGLASS_PVE_TOKEN: required().refine((t) => /^[^@\s]+@[^!\s]+![^=\s]+=\S+$/.test(t), {
      message: 'must look like USER@REALM!TOKENID=SECRET',
    }),
    HOURGLASS_PVE_NODE: required(),
    HOURGLASS_PVE_TEMPLATES: required().transform((text, ctx) => {
      try {
        return parseTemplates(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    HOURGLASS_PVE_INSECURE_TLS: z.string().optional(),
    HOURGLASS_PVE_DEPLOYMENT: optionalTextVar,
    HOURGLASS_TASK_QUEUE: optionalTextVar,
  })
  .transform((e) => ({
    url: e.HOURGLASS_PVE_URL,
    token: e.HOURGLASS_PVE_TOKEN,
    node: e.HOURGLASS_PVE_NODE,
    templates: e.HOURGLASS_PVE_TEMPLATES,
    insecureTls: /^(1|true|yes)$/i.test(e.HOURGLASS_PVE_INSECURE_TLS ?? ''),
    // Several deployments may share one PVE cluster: each sees only its own VMs.
    deployment: e.HOURGLASS_PVE_DEPLOYMENT ?? e.HOURGLASS_TASK_QUEUE ?? 'hourglass',
  }));

/** `default=9000,ubuntu=9001` (a bare `9000` names the default template). */
export function parseTemplates(text: string): Record<string, number> {
  const templates: Record<string, number> = {};
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  for (const entry of entries) {
    const [name, vmid] = entry.includes('=') ? entry.split('=', 2) : ['default', entry];
    const id = Number(vmid);
    if (!name || !Number.isInteger(id) || id < 100) {
      throw new Error(`bad entry '${entry}' (want name=vmid, vmid ≥ 100)`);
    }
    templates[name.trim()] = id;
  }
  return templates;
}

export const DRIVER_SCHEMAS = {
  process: processSchema,
  qemu: qemuSchema,
  libvirt: libvirtSchema,
  proxmox: proxmoxSchema,
};
export type DriverName = keyof typeof DRIVER_SCHEMAS;
export type DriverSettings = { [K in DriverName]: z.output<(typeof DRIVER_SCHEMAS)[K]> };
export type ProcessSettings = DriverSettings['process'];
export type QemuSettings = DriverSettings['qemu'];
export type LibvirtSettings = DriverSettings['libvirt'];
export type ProxmoxSettings = DriverSettings['proxmox'];

/** One driver's settings from the environment; a bad value throws naming its variable. */
export function driverSettings<K extends DriverName>(name: K, env: NodeJS.ProcessEnv): DriverSettings[K] {
  return parseEnv(DRIVER_SCHEMAS[name], env);
}

/** The guest's TSC runs at the host's under TCG; telling the guest skips its calibration. */
function hostTscKhz(): number {
  try {
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    if (mhz) return Math.round(Number(mhz) * 1000);
  } catch {
    // not Linux /proc: fall through
  }
  return 2_300_000;
}
