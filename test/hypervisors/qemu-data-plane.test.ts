// The data plane on the qemu driver (a real microVM, TCG here): streamed exec and file bytes over
// its own qemu-ga socket client. One VM: the driver's own tests, then the shared contract.
// Run: HOURGLASS_SKIP_GLOBAL_SETUP=1 npx vitest run test/hypervisors/qemu-data-plane.test.ts
import { rm } from 'node:fs/promises';
import { driverSettings } from '../../config/drivers';
import { createQemuHypervisor, type QemuHypervisor } from '../../hypervisors/qemu/driver';
import { ensureGuestImage, qemuEnv, vmStateDir } from '../support/vm-drivers';
import { dataPlaneContract } from './data-plane-contract';
import { guestDataPlane } from './guest-data-plane';

const id = 'data-plane-1';
let stateDir: string | undefined;
let made: Promise<QemuHypervisor> | undefined;
const driver = () =>
  (made ??= (async () => {
    await ensureGuestImage();
    stateDir = await vmStateDir('hg-qd-');
    return createQemuHypervisor(driverSettings('qemu', qemuEnv()), stateDir) as QemuHypervisor;
  })());

guestDataPlane('qemu', {
  driver,
  transport: (hv, sandbox) => (hv as QemuHypervisor).fileTransport(sandbox),
  id,
  readyMs: 90_000,
  firstByteBoundMs: 500,
});

dataPlaneContract('qemu', driver, {
  slow: true,
  newId: () => id,
  readyMs: 90_000,
  cleanup: async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  },
});
