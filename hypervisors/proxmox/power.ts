// Starting, stopping and deleting a sandbox's VM, each tolerant of finding it already done.
import { BusyError } from '../errors';
import type { OpContext } from '../types';
import { PveTaskError } from './client';
import { pveText, VM_GONE } from './errors';
import { vmPath, type PveTasks } from './tasks';
import type { SandboxVm } from './vms';

const ALREADY_RUNNING = /already running/;

export async function startVm(tasks: PveTasks, vm: SandboxVm, ctx: OpContext): Promise<void> {
  await tasks.withRetries(ctx, `start VM ${vm.vmid}`, async () => {
    try {
      await tasks.run(vmPath(vm, 'status/start'), {}, ctx);
    } catch (err) {
      // "already running" is a task exitstatus, and fine here (proxmox-api.md §5).
      if (err instanceof PveTaskError && ALREADY_RUNNING.test(err.exitstatus)) return;
      throw err;
    }
  });
}

/** Shutdown lets the guest flush its disks; forceStop turns it off if it does not obey within timeoutS. */
export async function shutdownVm(tasks: PveTasks, vm: SandboxVm, timeoutS: number, ctx: OpContext): Promise<void> {
  await tasks.withRetries(ctx, `stop VM ${vm.vmid}`, () =>
    tasks.run(vmPath(vm, 'status/shutdown'), { forceStop: true, timeout: timeoutS }, ctx),
  );
}

/** Stop (a no-op when stopped), then delete with purge; a VM that vanished meanwhile is fine. */
export async function destroyVm(tasks: PveTasks, vm: SandboxVm, ctx: OpContext): Promise<void> {
  await tasks.withRetries(ctx, `destroy VM ${vm.vmid}`, async () => {
    try {
      await tasks.run(vmPath(vm, 'status/stop'), {}, ctx).catch((err: unknown) => {
        // Suspended to disk = already off, and the one lock destroy accepts (proxmox-api.md §5, §6).
        if (!(err instanceof PveTaskError && err.exitstatus === 'VM is locked (suspended)')) throw err;
      });
      // A running VM cannot be destroyed (proxmox-api.md §6); if someone started it again, the retry stops it.
      const params = { purge: true, 'destroy-unreferenced-disks': true };
      await tasks.run(`/nodes/${vm.node}/qemu/${vm.vmid}`, params, ctx, 'DELETE');
    } catch (err) {
      const text = pveText(err);
      if (VM_GONE.test(text)) return;
      if (/is running - destroy failed/.test(text)) throw new BusyError(text);
      throw err;
    }
  });
}
