// Real VMs through the REST API and a real Temporal worker: for qemu (TCG), libvirt (real libvirtd)
// and proxmox (the PVE simulator), create → exec → renew → lease expiry → DESTROYED with nothing
// left on the hypervisor; force destroy; a guest that never becomes ready; and (qemu) a sandbox
// whose workflow dies mid-boot, cleaned up by the reaper.
//
// The drivers run one after the other (TCG boots are CPU-bound), each with a harness of its own so
// that a prune only ever sees this file's VMs. Nothing is skipped: a missing image or libvirtd fails.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLibvirtHypervisor } from '../hypervisors/libvirt/driver';
import { createProxmoxHypervisor } from '../hypervisors/proxmox/driver';
import { createQemuHypervisor } from '../hypervisors/qemu/driver';
import type { Hypervisor } from '../hypervisors/types';
import type { SandboxStatus } from '../workflows/types';
import { startPveSimulator } from './pve-sim/index';
import { eventually, settledEvents, startHarness, type Harness } from './support/harness';
import {
  ensureGuestImage,
  ensureLibvirtd,
  libvirtLeftovers,
  proxmoxLeftovers,
  qemuEnv,
  qemuLeftovers,
  vmStateDir,
} from './support/vm-drivers';
import { sandboxWorkflowId } from '../workflows/ids';
import { driverSettings } from '../config/drivers';

/** Generous: TCG on 2 cores shared with the other suites' VMs (~3 s when idle). */
const READY_TIMEOUT_S = 180;
const VM_TEST_MS = 300_000;
const RENEW_EXTRA_S = 5;

interface DriverSetup {
  /** Extra drivers for the harness, by the name the API uses. */
  drivers: Record<string, Hypervisor>;
  /** What the hypervisor behind `driver` still holds for sandbox `id` (empty: nothing). */
  leftovers(id: string, driver: string): Promise<string[]>;
  /** Makes the next sandbox's guest unable to answer: the driver name to create it on, and an undo. */
  neverReady(): { driver: string; undo(): void };
  close(): Promise<void>;
}

interface DriverCase {
  name: 'qemu' | 'libvirt' | 'proxmox';
  /** Short leases: the lease starts only once the guest is ready. */
  ttlSeconds: number;
  /** How long the never-ready guest is given. */
  neverReadyTimeoutSeconds: number;
  setup(): Promise<DriverSetup>;
}

const timings: { driver: string; test: string; ms: number }[] = [];
const suiteStarted = Date.now();
afterAll(() => {
  const lines = timings.map((t) => `  ${t.driver.padEnd(8)} ${String(t.ms).padStart(6)} ms  (${t.test})`);
  console.log(
    `[vm-lifecycle] create→RUNNING through the API:\n${lines.join('\n')}\n[vm-lifecycle] suite ` +
      `${Date.now() - suiteStarted} ms`,
  );
});

const CASES: DriverCase[] = [
  {
    name: 'qemu',
    ttlSeconds: 10,
    neverReadyTimeoutSeconds: 15,
    async setup() {
      await ensureGuestImage();
      const dir = await vmStateDir('hg-vml-q-');
      const brokenDir = await vmStateDir('hg-vml-qb-');
      const qemu = createQemuHypervisor(driverSettings('qemu', qemuEnv()), dir);
      // No init in the initramfs: the kernel panics, panic=-1 reboots, -no-reboot ends QEMU.
      const broken = createQemuHypervisor(
        driverSettings('qemu', qemuEnv({ HOURGLASS_QEMU_KERNEL_ARGS: 'rdinit=/nonexistent' })),
        brokenDir,
      );
      return {
        drivers: { qemu, 'qemu-noready': broken },
        leftovers: (id, driver) =>
          driver === 'qemu' ? qemuLeftovers(qemu, dir, id) : qemuLeftovers(broken, brokenDir, id),
        neverReady: () => ({ driver: 'qemu-noready', undo: () => {} }),
        async close() {
          await qemu.close?.();
          await broken.close?.();
          await rm(dir, { recursive: true, force: true });
          await rm(brokenDir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'libvirt',
    ttlSeconds: 10,
    neverReadyTimeoutSeconds: 15,
    async setup() {
      await ensureLibvirtd();
      await ensureGuestImage();
      const dir = await vmStateDir('hg-vml-l-');
      const libvirt = createLibvirtHypervisor(driverSettings('libvirt', process.env), dir);
      const broken = createLibvirtHypervisor(
        driverSettings('libvirt', { ...process.env, HOURGLASS_LIBVIRT_EXTRA_KERNEL_ARGS: 'rdinit=/nonexistent' }),
        dir,
      );
      return {
        drivers: { libvirt, 'libvirt-noready': broken },
        leftovers: (id, driver) => libvirtLeftovers(driver === 'libvirt' ? libvirt : broken, dir, id),
        neverReady: () => ({ driver: 'libvirt-noready', undo: () => {} }),
        async close() {
          await libvirt.close?.();
          await broken.close?.();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'proxmox',
    ttlSeconds: 5,
    neverReadyTimeoutSeconds: 2,
    async setup() {
      const sim = await startPveSimulator({ taskMs: [20, 200], agentBootMs: 300, authFailureDelayMs: 20 });
      const proxmox = createProxmoxHypervisor(
        driverSettings('proxmox', { ...process.env, ...sim.env }),
        '/nonexistent',
      );
      return {
        drivers: { proxmox },
        leftovers: (id) => proxmoxLeftovers(proxmox, sim, id),
        neverReady: () => {
          const fault = sim.inject({ op: 'agent-ping', kind: 'agent-down', times: Infinity });
          return { driver: 'proxmox', undo: () => fault.clear() };
        },
        async close() {
          await proxmox.close?.();
          await sim.close();
        },
      };
    },
  },
];

for (const c of CASES) {
  describe(`${c.name}: real VMs through the API and a real worker`, () => {
    let h: Harness;
    let setup: DriverSetup;
    const made: { id: string; driver: string }[] = [];

    beforeAll(async () => {
      setup = await c.setup();
      h = await startHarness({ drivers: setup.drivers });
    }, 20 * 60_000);

    afterAll(async () => {
      // Whatever a failed test left: destroy this file's sandboxes only (libvirtd is shared).
      for (const { id, driver } of made) {
        await h?.hypervisors
          .get(driver)
          .destroy(id)
          .catch(() => undefined);
      }
      await h?.close();
      await setup?.close();
    }, 120_000);

    const get = async (id: string) => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body;
    const untilState = (id: string, want: string, timeoutMs: number) =>
      eventually(
        async () => {
          const s = await get(id);
          return s.state === want ? s : undefined;
        },
        timeoutMs,
        250,
      );

    /** Creates through the API and waits for RUNNING, recording the time it took. */
    async function createRunning(test: string, body: Record<string, unknown> = {}): Promise<SandboxStatus> {
      const started = Date.now();
      const res = await h.api<SandboxStatus>('POST', '/v1/sandboxes', {
        driver: c.name,
        ttlSeconds: c.ttlSeconds,
        readyTimeoutSeconds: READY_TIMEOUT_S,
        labels: { suite: 'vm-lifecycle' },
        ...body,
      });
      const ms = Date.now() - started;
      if (res.body?.id) made.push({ id: res.body.id, driver: c.name });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body, JSON.stringify(res.body)).toMatchObject({ state: 'RUNNING', driver: c.name });
      timings.push({ driver: c.name, test, ms });
      console.log(`[vm-lifecycle] ${c.name}: create→RUNNING ${ms} ms through the API (${res.body.isolation}; ${test})`);
      return res.body;
    }

    it(
      'create → exec uname → renew by update → the lease expires → DESTROYED, nothing left on the hypervisor',
      async () => {
        const sbx = await createRunning('lease');
        expect(await setup.leftovers(sbx.id, c.name)).not.toEqual([]); // the VM is really there

        const uname = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, {
          command: ['uname', '-a'],
          timeoutSeconds: 30,
        });
        expect(uname.status, JSON.stringify(uname.body)).toBe(200);
        expect(uname.body).toMatchObject({ exitCode: 0, timedOut: false });
        expect(uname.body.stdout).toMatch(/^Linux /);

        // Renewal by update: extend-only, to now + ttl, so it moves by at least the extra seconds.
        const firstExpiry = Date.parse(sbx.expiresAt!);
        const renewed = await h.api('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, {
          ttlSeconds: c.ttlSeconds + RENEW_EXTRA_S,
        });
        expect(renewed.status, JSON.stringify(renewed.body)).toBe(200);
        expect(renewed.body).toMatchObject({ id: sbx.id, capped: false });
        const newExpiry = Date.parse(renewed.body.expiresAt);
        expect(newExpiry - firstExpiry).toBeGreaterThanOrEqual(RENEW_EXTRA_S * 1000);
        expect((await get(sbx.id)).expiresAt).toBe(renewed.body.expiresAt);

        // Past the first expiry the sandbox lives on: the renewal is what counts.
        await sleepUntil(firstExpiry + 1000);
        expect((await get(sbx.id)).state).toBe('RUNNING');
        expect(await setup.leftovers(sbx.id, c.name)).not.toEqual([]);

        const done = await untilState(sbx.id, 'DESTROYED', newExpiry - Date.now() + 60_000);
        expect(done.destroyReason).toBe('lease expired');
        const evs = await settledEvents(h, sbx.id, 'DESTROYED');
        expect(evs.map((e) => [e.to, e.reason]).slice(-3)).toEqual([
          ['EXPIRED', 'lease expired'],
          ['DESTROYING', 'lease expired'],
          ['DESTROYED', 'lease expired'],
        ]);
        expect(evs.some((e) => e.reason.startsWith('lease renewed until'))).toBe(true);
        const expiredAt = Date.parse(evs.find((e) => e.to === 'EXPIRED')!.at);
        expect(expiredAt).toBeGreaterThanOrEqual(newExpiry);
        expect(expiredAt - newExpiry).toBeLessThan(10_000);
        expect(await setup.leftovers(sbx.id, c.name)).toEqual([]);
      },
      VM_TEST_MS,
    );

    it(
      'force destroy of a RUNNING sandbox leaves nothing',
      async () => {
        const sbx = await createRunning('force destroy', { ttlSeconds: 600 });
        expect(await setup.leftovers(sbx.id, c.name)).not.toEqual([]);
        const res = await h.api('POST', `/v1/sandboxes/${sbx.id}/destroy`, { force: true });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        expect(res.body).toMatchObject({
          id: sbx.id,
          state: 'DESTROYED',
          destroyReason: 'force destroy by local',
          vmExisted: true,
        });
        expect(await get(sbx.id)).toMatchObject({ state: 'DESTROYED', destroyReason: 'force destroy by local' });
        expect((await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).describe()).status.name).toBe(
          'TERMINATED',
        );
        expect(await setup.leftovers(sbx.id, c.name)).toEqual([]);
      },
      VM_TEST_MS,
    );

    it(
      'a guest that never becomes ready: FAILED → DESTROYED with "create failed: …", nothing left',
      async () => {
        const { driver, undo } = setup.neverReady();
        try {
          const started = Date.now();
          const res = await h.api<SandboxStatus>('POST', '/v1/sandboxes', {
            driver,
            ttlSeconds: 60,
            readyTimeoutSeconds: c.neverReadyTimeoutSeconds,
          });
          if (res.body?.id) made.push({ id: res.body.id, driver });
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          // The create call returns once provisioning is over; destroy may already be under way.
          expect(['FAILED', 'DESTROYING', 'DESTROYED']).toContain(res.body.state);
          expect(res.body).toMatchObject({ errorCode: 'not_ready' });
          expect(res.body.error).toMatch(/not ready after/);
          const done = await untilState(res.body.id, 'DESTROYED', 60_000);
          console.log(
            `[vm-lifecycle] ${c.name}: never-ready guest FAILED→DESTROYED ${Date.now() - started} ms after ` +
              `create: ${done.error?.slice(0, 160)}`,
          );
          expect(done.destroyReason).toMatch(/^create failed: sandbox \S+ not ready after \d+ ms/);
          const evs = await settledEvents(h, res.body.id, 'DESTROYED');
          expect(evs.map((e) => e.to)).toEqual([
            'REQUESTED',
            'PROVISIONING',
            'BOOTING',
            'FAILED',
            'DESTROYING',
            'DESTROYED',
          ]);
          expect(evs.find((e) => e.to === 'FAILED')!.reason).toMatch(/^create failed: /);
          expect(await setup.leftovers(res.body.id, driver)).toEqual([]);
        } finally {
          undo();
        }
      },
      VM_TEST_MS,
    );

    if (c.name === 'qemu') {
      it(
        'a sandbox whose workflow dies while its VM boots leaves nothing once the reaper has run',
        async () => {
          const res = await h.api<SandboxStatus>('POST', '/v1/sandboxes', {
            driver: 'qemu',
            ttlSeconds: 60,
            readyTimeoutSeconds: READY_TIMEOUT_S,
            wait: false,
          });
          expect(res.status, JSON.stringify(res.body)).toBe(201);
          const { id } = res.body;
          made.push({ id, driver: 'qemu' });

          // Mid-boot: the QEMU process exists and the guest has not answered yet.
          const seen = await eventually(
            async () => {
              const s = await get(id);
              if (!['REQUESTED', 'PROVISIONING', 'BOOTING'].includes(s.state)) return s; // too late: fail below
              return s.state === 'BOOTING' &&
                (await setup.leftovers(id, 'qemu')).some((l) => l.startsWith('QEMU process'))
                ? s
                : undefined;
            },
            120_000,
            50,
          );
          expect(seen.state, 'the guest left BOOTING before the test could interrupt it').toBe('BOOTING');
          // A worker in this process cannot be SIGKILLed; terminating the workflow is the same loss:
          // no workflow code runs, so no finally destroys the VM. Then the worker goes away and comes back.
          await h.client.workflow.getHandle(sandboxWorkflowId(id)).terminate('test: worker killed mid-boot');
          await h.stopWorker();
          await h.startWorker();
          expect((await h.pool.query('SELECT state FROM sandboxes WHERE id=$1', [id])).rows[0]?.state).toBe('BOOTING');
          expect(await setup.leftovers(id, 'qemu')).not.toEqual([]); // leaked until the reaper comes

          // olderThanSeconds keeps this prune off other files' young sandboxes in the shared registry.
          const olderThanSeconds = 5;
          await sleepUntil(Date.parse(res.body.createdAt) + (olderThanSeconds + 1) * 1000);
          const item = await eventually(
            async () => {
              const report = (await h.api('POST', '/v1/sandboxes/prune', { olderThanSeconds })).body;
              return (report.items as { id: string; drift: string; action: string }[]).find((i) => i.id === id);
            },
            30_000,
            1000,
          );
          expect(['closed_workflow_row', 'orphan_vm']).toContain(item.drift);
          expect(item.action).toBe('destroyed vm, marked DESTROYED');
          expect(await setup.leftovers(id, 'qemu')).toEqual([]);
          const row = (await h.pool.query('SELECT state, destroy_reason FROM sandboxes WHERE id=$1', [id])).rows[0];
          expect(row.state).toBe('DESTROYED');
          expect(row.destroy_reason).toMatch(/^reaper: /);
          expect((await get(id)).state).toBe('DESTROYED');
        },
        VM_TEST_MS,
      );
    }
  });
}

async function sleepUntil(at: number): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}
