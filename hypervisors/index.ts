// Driver registration: a new driver is one folder in hypervisors/, one settings schema in
// config/drivers.ts, and one line here.
import type { Config } from '../config/service';
import type { DriverName, DriverSettings } from '../config/drivers';
import { withInjectedFaults } from './fault-injection';
import { createLibvirtHypervisor } from './libvirt/driver';
import { createProcessHypervisor } from './process/driver';
import { createProxmoxHypervisor } from './proxmox/driver';
import { createQemuHypervisor } from './qemu/driver';
import type { Hypervisor } from './types';

const FACTORIES: { [K in DriverName]: (settings: DriverSettings[K], stateDir: string) => Hypervisor } = {
  process: createProcessHypervisor,
  qemu: createQemuHypervisor,
  libvirt: createLibvirtHypervisor,
  proxmox: createProxmoxHypervisor,
};

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

/** Builds the enabled drivers from their settings (loadConfig read them); `extra` adds or replaces drivers. */
export function loadHypervisors(
  drivers: Config['drivers'],
  stateDir: string,
  extra: Record<string, Hypervisor> = {},
): HypervisorSet {
  const built = new Map<string, Hypervisor>();
  for (const name of drivers.enabled) {
    const driver = buildDriver(name, drivers.settings, stateDir);
    built.set(name, drivers.faultRate > 0 ? withInjectedFaults(driver, drivers.faultRate) : driver);
  }
  for (const [name, driver] of Object.entries(extra)) built.set(name, driver);
  return new HypervisorSet(built, drivers.defaultDriver);
}

function buildDriver<K extends DriverName>(name: K, all: Partial<DriverSettings>, stateDir: string): Hypervisor {
  const settings = all[name];
  if (settings === undefined) throw new Error(`driver '${name}' is enabled but its settings were never read`);
  return FACTORIES[name](settings, stateDir);
}
