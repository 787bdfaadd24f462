// Driver registration: a new driver is one folder in hypervisors/ plus one line here.
import { withInjectedFaults } from './fault-injection';
import { createLibvirtHypervisor } from './libvirt/driver';
import { createProcessHypervisor } from './process/driver';
import { createProxmoxHypervisor } from './proxmox/driver';
import { createQemuHypervisor } from './qemu/driver';
import type { Hypervisor } from './types';

type Factory = (env: NodeJS.ProcessEnv, stateDir: string) => Hypervisor;

const FACTORIES: Record<string, Factory> = {
  process: createProcessHypervisor,
  qemu: createQemuHypervisor,
  libvirt: createLibvirtHypervisor,
  proxmox: createProxmoxHypervisor,
};

export const KNOWN_DRIVERS = Object.keys(FACTORIES);

export class HypervisorSet {
  constructor(
    private readonly drivers: Map<string, Hypervisor>,
    readonly defaultDriver: string,
  ) {}

  get names(): string[] {
    return [...this.drivers.keys()];
  }

  has(name: string): boolean {
    return this.drivers.has(name);
  }

  get(name: string): Hypervisor {
    const driver = this.drivers.get(name);
    if (!driver) throw new Error(`driver '${name}' is not enabled on this worker; enabled: ${this.names.join(', ')}`);
    return driver;
  }

  all(): Hypervisor[] {
    return [...this.drivers.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((d) => d.close?.()));
  }
}

/** Builds the enabled drivers (HOURGLASS_DRIVERS, default "process"); the first is the default. */
export function loadHypervisors(
  env: NodeJS.ProcessEnv,
  stateDir: string,
  extra: Record<string, Hypervisor> = {},
): HypervisorSet {
  const names = enabledDrivers(env);
  const drivers = new Map<string, Hypervisor>();
  for (const name of names) {
    const factory = FACTORIES[name];
    if (!factory) throw new Error(`unknown driver '${name}' in HOURGLASS_DRIVERS; known: ${KNOWN_DRIVERS.join(', ')}`);
    const driver = factory(env, stateDir);
    const faultRate = Number(env.HOURGLASS_FAULT_RATE ?? 0);
    drivers.set(name, faultRate > 0 ? withInjectedFaults(driver, faultRate) : driver);
  }
  for (const [name, driver] of Object.entries(extra)) drivers.set(name, driver);
  return new HypervisorSet(drivers, defaultDriver(env));
}

/** HOURGLASS_DEFAULT_DRIVER, else the first enabled driver. */
export function defaultDriver(env: NodeJS.ProcessEnv): string {
  return env.HOURGLASS_DEFAULT_DRIVER ?? enabledDrivers(env)[0] ?? 'process';
}

export function enabledDrivers(env: NodeJS.ProcessEnv): string[] {
  return (env.HOURGLASS_DRIVERS ?? 'process')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
