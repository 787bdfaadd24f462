// The driver contract (contract.ts) for the qemu driver: a real microVM (TCG where KVM does not answer).
import { rm } from 'node:fs/promises';
import { VM_GUEST_HOME } from '../../hypervisors/guest/contract';
import { createQemuHypervisor } from '../../hypervisors/qemu/driver';
import { ensureGuestImage, qemuEnv, vmStateDir } from '../support/vm-drivers';
import { driverContract } from './contract';
import { driverSettings } from '../../config/drivers';

let stateDir: string | undefined;
let n = 0;

driverContract('qemu', {
  driver: async () => {
    await ensureGuestImage();
    stateDir = await vmStateDir('hg-qc-');
    return createQemuHypervisor(driverSettings('qemu', qemuEnv()), stateDir);
  },
  newId: () => `contract-${++n}`,
  home: () => VM_GUEST_HOME,
  readyMs: 90_000, // TCG on 2 cores, maybe shared with other suites; ~3 s when idle
  cleanup: async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  },
});
