// The qemu driver's per-sandbox state on disk: <driver dir>/<id>/vm.json and the files beside it.
// Everything needed to find a sandbox again lives here, so a restarted worker picks it up.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestImage } from '../guest/image';
import { readJson, writeJsonAtomic } from '../common/json-file';
import { hasExited, processStat, type RecordedProcess } from '../common/proc-identity';

export type Accel = 'kvm' | 'tcg';

/** What vm.json holds: enough to find, reboot and identify the VM from any worker. */
export interface VmRecord {
  id: string;
  createdAt: string;
  template: string;
  labels: Record<string, string>;
  memoryMiB: number;
  cpus: number;
  /** Pinned at create: the overlay backs onto this rootfs. */
  image: GuestImage;
  accel?: Accel;
  process?: QemuProcess;
}

/** A pid alone is not an identity (pids are reused); pid + start time is. */
export interface QemuProcess extends RecordedProcess {
  launchedAt: string;
}

export type SandboxPaths = ReturnType<typeof sandboxPaths>;

export function sandboxPaths(driverDir: string, id: string) {
  const dir = join(driverDir, id);
  return {
    dir,
    record: join(dir, 'vm.json'),
    overlay: join(dir, 'overlay.qcow2'),
    qmp: join(dir, 'qmp.sock'),
    agent: join(dir, 'qga.sock'),
    pidfile: join(dir, 'qemu.pid'),
    console: join(dir, 'console.log'),
    log: join(dir, 'qemu.log'),
  };
}

export async function readRecord(p: SandboxPaths): Promise<VmRecord | null> {
  return readJson<VmRecord>(p.record);
}

export async function writeRecord(p: SandboxPaths, rec: VmRecord): Promise<void> {
  await writeJsonAtomic(p.record, rec);
}

/** The live process QEMU's -pidfile names, or null (no file, no such pid, or a zombie). */
export async function readPidfile(file: string): Promise<QemuProcess | null> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const st = await processStat(pid);
  return st && !hasExited(st) ? { pid, startTime: st.startTime, launchedAt: new Date().toISOString() } : null;
}

/** QEMU writes the pidfile itself; it only counts if that process's command line names this sandbox. */
export async function processFromPidfile(p: SandboxPaths): Promise<QemuProcess | null> {
  const proc = await readPidfile(p.pidfile);
  if (!proc) return null;
  const cmdline = await readFile(`/proc/${proc.pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes(p.dir) ? proc : null;
}
