// The data plane on the qemu driver (a real microVM, TCG here): streamed exec and file bytes over
// its own qemu-ga socket client.
// Run: HOURGLASS_SKIP_GLOBAL_SETUP=1 npx vitest run test/hypervisors/qemu-data-plane.test.ts
import { rm } from 'node:fs/promises';
import { driverSettings } from '../../config/drivers';
import { createQemuHypervisor, type QemuHypervisor } from '../../hypervisors/qemu/driver';
import { ensureGuestImage, qemuEnv, vmStateDir } from '../support/vm-drivers';
import { guestDataPlane } from './guest-data-plane';

let stateDir: string | undefined;

guestDataPlane('qemu', {
  driver: async () => {
    await ensureGuestImage();
    stateDir = await vmStateDir('hg-qd-');
    return createQemuHypervisor(driverSettings('qemu', qemuEnv()), stateDir);
  },
  transport: (hv, id) => (hv as QemuHypervisor).fileTransport(id),
  id: 'data-plane-1',
  readyMs: 90_000,
  transferBytes: 50 * 1024 * 1024,
  transferTimeoutMs: 300_000,
  firstByteBoundMs: 500,
  cleanup: async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  },
});
