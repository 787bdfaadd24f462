// The driver contract (contract.ts) for the libvirt driver: a real libvirtd and a real guest.
import { rm } from 'node:fs/promises';
import { VM_GUEST_HOME } from '../../hypervisors/guest/contract';
import { createLibvirtHypervisor } from '../../hypervisors/libvirt/driver';
import { ensureGuestImage, ensureLibvirtd, vmStateDir } from '../support/vm-drivers';
import { driverContract } from './contract';
import { driverSettings } from '../../config/drivers';

const RUN = `c${Date.now().toString(36)}`; // domains of parallel runs never share a name
let stateDir: string | undefined;
let n = 0;

driverContract('libvirt', {
  driver: async () => {
    await ensureLibvirtd();
    await ensureGuestImage();
    stateDir = await vmStateDir('hg-lc-');
    return createLibvirtHypervisor(driverSettings('libvirt', process.env), stateDir);
  },
  newId: () => `${RUN}-${++n}`,
  home: () => VM_GUEST_HOME,
  readyMs: 90_000,
  cleanup: async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  },
});
