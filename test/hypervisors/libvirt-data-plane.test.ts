// The data plane on the libvirt driver (a real libvirtd and guest, TCG): streamed exec and file
// bytes over `virsh qemu-agent-command`, a process per call.
// Run: HOURGLASS_SKIP_GLOBAL_SETUP=1 npx vitest run test/hypervisors/libvirt-data-plane.test.ts
//
// Then the shared contract (data-plane-contract.ts) on the same VM, with a 2 MiB round trip: 50 MiB
// would take ~8 minutes through virsh (~0.1 MB/s under TCG, hypervisors/libvirt/guest-agent.ts).
import { rm } from 'node:fs/promises';
import { afterAll } from 'vitest';
import { driverSettings } from '../../config/drivers';
import { createLibvirtHypervisor, type LibvirtHypervisor } from '../../hypervisors/libvirt/driver';
import { ensureGuestImage, ensureLibvirtd, vmStateDir } from '../support/vm-drivers';
import { dataPlaneContract } from './data-plane-contract';
import { guestDataPlane } from './guest-data-plane';

const id = `dp${Date.now().toString(36)}`;
let stateDir: string | undefined;
let made: Promise<LibvirtHypervisor> | undefined;
const driver = () =>
  (made ??= (async () => {
    await ensureLibvirtd();
    await ensureGuestImage();
    stateDir = await vmStateDir('hg-ld-');
    return createLibvirtHypervisor(driverSettings('libvirt', process.env), stateDir) as LibvirtHypervisor;
  })());

guestDataPlane('libvirt', {
  driver,
  transport: (hv, sandbox) => (hv as LibvirtHypervisor).fileTransport(sandbox),
  id,
  readyMs: 90_000,
  // 2 MiB: 50 would take minutes of CI here; qemu and proxmox move 50 MiB.
  transferBytes: 2 * 1024 * 1024,
  transferTimeoutMs: 180_000,
  firstByteBoundMs: 1500,
});

dataPlaneContract('libvirt', driver, {
  slow: true,
  newId: () => id,
  readyMs: 90_000,
  roundTripBytes: 2 * 1024 * 1024,
});

afterAll(async () => {
  const hv = await made;
  await hv?.destroy(id).catch(() => undefined);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}, 120_000);
