// The driver contract (contract.ts) for the proxmox driver, against the PVE simulator (whose guest
// agent runs commands on this host).
import { randomUUID } from 'node:crypto';
import { VM_GUEST_HOME } from '../../hypervisors/guest/contract';
import { ProxmoxHypervisor } from '../../hypervisors/proxmox/driver';
import { startPveSimulator, type PveSimulator } from '../pve-sim/index';
import { driverContract } from './contract';

let sim: PveSimulator;

driverContract('proxmox', {
  driver: async () => {
    sim = await startPveSimulator({ taskMs: [20, 100], agentBootMs: 100 });
    const { url, token, node, templateIds: templates } = sim;
    return new ProxmoxHypervisor({ url, token, node, templates, deployment: 'contract' });
  },
  newId: () => `sb-${randomUUID().slice(0, 8)}`,
  home: () => VM_GUEST_HOME,
  readyMs: 10_000,
  cleanup: async () => sim?.close(),
});
