// sandbox.json: everything a worker needs to find, run and remove a process sandbox again —
// including how it was confined, which later operations follow rather than the current settings.
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CgroupRecord } from './cgroups-plan';
import type { IsolationMode } from './config';
import type { WorkspaceRecord } from './workspace';
import type { RecordedProcess } from '../common/proc-identity';
import type { SandboxLimits } from '../types';

/**
 * none: own namespace, loopback only; slirp4netns: own namespace plus outbound; host: not isolated (isolation
 * none).
 */
export type NetworkMode = 'none' | 'slirp4netns' | 'host';

export interface SandboxRecord {
  id: string;
  labels: Record<string, string>;
  createdAt: string;
  /** What was applied, said plainly (VmInfo.isolation). */
  isolation: string;
  mode: IsolationMode;
  network: NetworkMode;
  /** The limits enforced; a field is absent when nothing enforces it. */
  limits: SandboxLimits;
  cgroup?: CgroupRecord;
  workspace?: WorkspaceRecord;
  /** The namespace holder (bwrap's init, pid 1 inside); absent when stopped. */
  holder?: RecordedProcess;
  slirp?: RecordedProcess;
  /**
   * With slirp4netns: addresses allowed past the egress filter (HOURGLASS_PROCESS_NETWORK_ALLOW at
   * create). Absent on sandboxes made before the filter existed: they keep running without one.
   */
  egressAllow?: string[];
  /**
   * The loop device (`loop7`) last attached to the workspace image (bubblewrap mounts it in the sandbox's
   * namespace).
   */
  loop?: string;
  /** Set while a loop device is being attached: until it is recorded, only a search finds it. */
  attachingLoop?: boolean;
  /** isolation none has no holder: this says whether it was stopped. */
  stopped?: boolean;
}

export const RECORD_FILE = 'sandbox.json';

export async function readRecord(dir: string): Promise<SandboxRecord | null> {
  let raw: Partial<SandboxRecord>;
  try {
    raw = JSON.parse(await readFile(path.join(dir, RECORD_FILE), 'utf8'));
  } catch {
    return null;
  }
  if (typeof raw.id !== 'string' || typeof raw.isolation !== 'string') return null;
  return upgradeLegacy(raw as SandboxRecord);
}

export async function writeRecord(dir: string, record: SandboxRecord): Promise<void> {
  const file = path.join(dir, RECORD_FILE);
  // Write-then-rename so a crash never leaves a half-written record (and an unfindable sandbox).
  await writeFile(`${file}.tmp`, JSON.stringify(record, null, 2), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

/**
 * Records written before confinement was recorded carry only the isolation text: the mode is read
 * from it, and nothing is taken as enforced. Their network is treated as none: a sandbox that
 * shared the host's network gets it back on no later start (fail closed).
 */
function upgradeLegacy(r: SandboxRecord): SandboxRecord {
  if (r.mode) return r;
  const mode: IsolationMode = r.isolation.startsWith('bubblewrap') ? 'bubblewrap' : 'none';
  return { ...r, mode, network: mode === 'none' ? 'host' : 'none', limits: {} };
}
