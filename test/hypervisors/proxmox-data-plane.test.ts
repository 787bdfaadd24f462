// The data plane on the proxmox driver, against the PVE simulator (test/pve-sim), which behaves as
// PVE's agent API does: file-write ≤ 60 KiB a call and truncating, file-read ≤ 16 MiB from the
// start, bytes as Latin-1 characters in JSON, 64 KiB POST bodies, exec output only at exit. One VM:
// the driver's own tests, then the shared contract.
import { expect, it } from 'vitest';
import { ProxmoxHypervisor } from '../../hypervisors/proxmox/driver';
import { PVE_READ_MAX_BYTES } from '../../hypervisors/proxmox/files';
import { startPveSimulator, type PveSimulator } from '../pve-sim/index';
import { dataPlaneContract } from './data-plane-contract';
import { guestDataPlane } from './guest-data-plane';

let sim: PveSimulator;
const id = `dp-${Date.now().toString(36)}`;
let made: Promise<ProxmoxHypervisor> | undefined;
const driver = () =>
  (made ??= (async () => {
    sim = await startPveSimulator({ taskMs: [20, 100], agentBootMs: 100 });
    const { url, token, node, templateIds: templates } = sim;
    return new ProxmoxHypervisor({ url, token, node, templates, deployment: 'data-plane' });
  })());

guestDataPlane('proxmox', {
  driver,
  transport: (hv, sandbox) => (hv as ProxmoxHypervisor).fileTransport(sandbox),
  id,
  readyMs: 10_000,
  firstByteBoundMs: 500,
  flood: (line) => ['sh', '-c', 'while :; do echo "$0"; done', line],
  more: (hv) => proxmoxLimits(() => hv() as ProxmoxHypervisor),
});

dataPlaneContract('proxmox', driver, { newId: () => id, cleanup: async () => sim?.close() });

/** What PVE allows, as the simulator answers it. */
function proxmoxLimits(pve: () => ProxmoxHypervisor): void {
  it('reads a file past the 16 MiB file-read cap in slices, byte for byte', async () => {
    const t = pve().fileTransport(id);
    const data = Buffer.alloc(PVE_READ_MAX_BYTES + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    async function* one() {
      yield data;
    }
    await t.writeBytes('/root/over-cap.bin', one());
    const got: Buffer[] = [];
    await t.readBytes('/root/over-cap.bin', async (c) => void got.push(c));
    expect(Buffer.concat(got).equals(data)).toBe(true);
    const reads = sim.requests().filter((r) => r.path.endsWith('/agent/file-read'));
    expect(reads.length).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('keeps every request under the 64 KiB body cap and file-write content under 61,440 characters', () => {
    const tooBig = sim.requests().filter((r) => r.status === 501);
    expect(tooBig).toEqual([]);
  });

  it('sends every byte value through exec output and stdin unchanged (Latin-1 on the wire)', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const chunks: Buffer[] = [];
    const r = await pve().execStream(id, { command: ['cat'], stdin: all }, (_s, c) => void chunks.push(c));
    expect(r.exitCode).toBe(0);
    expect(Buffer.concat(chunks).equals(all)).toBe(true);
    const plain = await pve().exec(id, { command: ['printf', '\\303\\251\\377'] });
    expect(Buffer.from(plain.stdoutBase64 ?? '', 'base64').equals(Buffer.from([0xc3, 0xa9, 0xff]))).toBe(true);
  });
}
