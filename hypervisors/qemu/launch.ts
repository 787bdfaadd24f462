// Starting QEMU: the microvm command line, daemonizing, and making sense of the pidfile after.
import { rm } from 'node:fs/promises';
import { HypervisorError } from '../errors';
import { tail } from '../common/file-tail';
import type { GuestImage } from '../guest/image';
import { isAlive } from '../common/proc-identity';
import { processFromPidfile, type Accel, type QemuProcess, type SandboxPaths, type VmRecord } from './state';
import { runToLog } from '../common/run-to-log';

const AGENT_PORT = 'org.qemu.guest_agent.0';

export interface QemuArgs {
  name: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  image: GuestImage;
  kernelArgs: string;
  console: string;
  qmp: string;
  agent: string;
  pidfile: string;
  /** The sandbox's overlay; without one the guest runs from its initramfs (the KVM probe). */
  disk?: string;
}

export function qemuArgs(a: QemuArgs): string[] {
  return [
    '-name',
    a.name,
    '-accel',
    a.accel,
    ...(a.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-M',
    'microvm',
    '-m',
    String(a.memoryMiB),
    '-smp',
    String(a.cpus),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot', // a guest reboot or panic ends QEMU instead of looping
    '-kernel',
    a.image.kernel,
    '-initrd',
    a.image.initrd,
    '-append',
    a.kernelArgs,
    '-serial',
    `file:${a.console}`,
    '-qmp',
    `unix:${a.qmp},server=on,wait=off`,
    '-device',
    'virtio-serial-device',
    '-chardev',
    `socket,id=agent,path=${a.agent},server=on,wait=off`,
    '-device',
    `virtserialport,chardev=agent,name=${AGENT_PORT}`,
    ...(a.disk
      ? ['-drive', `file=${a.disk},if=none,id=root,format=qcow2`, '-device', 'virtio-blk-device,drive=root']
      : []),
    // Daemonized: QEMU forks into its own session (the VM outlives the worker) and the parent
    // exits only once the sockets listen, with a non-zero code if startup failed.
    '-daemonize',
    '-pidfile',
    a.pidfile,
  ];
}

/** Runs QEMU with -daemonize and returns the foreground parent's exit code. */
export async function runDaemonizing(binary: string, args: string[], logFile: string): Promise<number> {
  return runToLog(binary, args, logFile, 60_000);
}

/** Boots a sandbox's VM from its overlay; resolves with the daemonized QEMU process. */
export async function launchQemu(
  binary: string,
  kernelArgs: string,
  p: SandboxPaths,
  rec: VmRecord,
  accel: Accel,
): Promise<QemuProcess> {
  const id = rec.id;
  await Promise.all([p.qmp, p.agent, p.pidfile].map((f) => rm(f, { force: true })));
  const args = qemuArgs({
    name: `hourglass-${id}`,
    accel,
    memoryMiB: rec.memoryMiB,
    cpus: rec.cpus,
    image: rec.image,
    kernelArgs,
    console: p.console,
    qmp: p.qmp,
    agent: p.agent,
    disk: p.overlay,
    pidfile: p.pidfile,
  });
  const code = await runDaemonizing(binary, args, p.log);
  if (code !== 0) {
    // Another worker may have launched this very VM: QEMU locks the pidfile and the overlay.
    const other = await processFromPidfile(p);
    if (other && (await isAlive(other))) return other;
    throw new HypervisorError(
      `sandbox ${id}: QEMU failed to start (exit ${code}): ${await tail(p.log)}`,
      'launch_failed',
    );
  }
  const proc = await processFromPidfile(p);
  if (!proc) {
    throw new HypervisorError(`sandbox ${id}: QEMU started but exited at once: ${await tail(p.log)}`, 'launch_failed');
  }
  return proc;
}
