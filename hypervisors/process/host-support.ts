// What this host offers to confine a sandbox with (bwrap, slirp4netns, iptables-restore, loop
// mounts, the kernel's pid limit), and the checks that fail closed, before anything is made or
// run, when a sandbox needs something missing.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { IsolationUnavailableError } from '../errors';
import { findExecutable } from '../common/find-executable';
import type { IsolationMode } from './config';
import type { SandboxRecord } from './record';
import { WorkspaceImages } from './workspace';

export interface HostSupport {
  bwrap: string | null;
  slirp: string | null;
  iptablesRestore: string | null;
  /** Why a workspace image cannot be loop-mounted here; null when it can. */
  loopUnavailable: string | null;
  /** Processes of all sandboxes together: half of the kernel's pid_max, the rest is the host's. */
  pidsCap: number | undefined;
}

/** `searchPath` is where the tools are looked for (the worker's PATH unless told otherwise). */
export function detectHostSupport(searchPath: string): HostSupport {
  return {
    bwrap: findExecutable('bwrap', searchPath),
    slirp: findExecutable('slirp4netns', searchPath),
    iptablesRestore: findExecutable('iptables-restore', searchPath),
    loopUnavailable: WorkspaceImages.unavailableReason(),
    pidsCap: hostPidsCap(),
  };
}

/** Fails closed, before anything is made, when this host cannot confine a sandbox as required. */
export function requireHostSupport(
  host: HostSupport,
  id: string,
  mode: IsolationMode,
  network: SandboxRecord['network'],
  diskMiB: number,
): void {
  if (mode === 'bubblewrap' && !host.bwrap) {
    throw new IsolationUnavailableError(
      `sandbox ${id}: bubblewrap (bwrap) is not installed, and process sandboxes require it: install it ` +
        `(Debian: apt-get install bubblewrap), ` +
        'or opt out of isolation explicitly with HOURGLASS_PROCESS_ISOLATION=none',
    );
  }
  if (network === 'slirp4netns' && !host.slirp) {
    throw new IsolationUnavailableError(
      `sandbox ${id}: network is on (HOURGLASS_PROCESS_NETWORK=1) but slirp4netns is not installed, and a ` +
        `sandbox never shares the host's network: ` +
        'install it (Debian: apt-get install slirp4netns) or set HOURGLASS_PROCESS_NETWORK=0',
    );
  }
  if (network === 'slirp4netns' && !host.iptablesRestore) {
    throw new IsolationUnavailableError(
      `sandbox ${id}: network is on, and its egress filter (internet only: no private ranges, no host ` +
        `addresses) needs ` +
        'iptables-restore: install it (Debian: apt-get install iptables) or set HOURGLASS_PROCESS_NETWORK=0',
    );
  }
  if (diskMiB > 0 && host.loopUnavailable) {
    throw new IsolationUnavailableError(
      `sandbox ${id}: its ${diskMiB} MiB workspace quota needs a loop-mounted ext4 image, and ` +
        `${host.loopUnavailable}; ` +
        'fix that, or run without workspace quotas explicitly with HOURGLASS_PROCESS_DISK_MIB=0',
    );
  }
}

/**
 * A sandbox is served the way it was made, not the way this worker (`workerMode`) would make one
 * now; one made without isolation is refused where isolation is required. `starting` also needs
 * what a start uses (slirp4netns, loop mounts); running a command needs only bwrap.
 */
export function requireServable(host: HostSupport, workerMode: IsolationMode, r: SandboxRecord, starting: boolean) {
  if (r.mode === 'none' && workerMode === 'bubblewrap') {
    throw new IsolationUnavailableError(
      `sandbox ${r.id} was created without isolation (HOURGLASS_PROCESS_ISOLATION=none) and this worker ` +
        `requires bubblewrap: ` +
        'it will not start it or run commands in it. Destroy it, or serve it from a worker with ' +
        'HOURGLASS_PROCESS_ISOLATION=none',
    );
  }
  if (starting) requireHostSupport(host, r.id, r.mode, r.network, r.workspace?.sizeMiB ?? 0);
  else requireHostSupport(host, r.id, r.mode, 'none', 0);
}

/** `bubblewrap 0.8.0` → `0.8.0`; null when it cannot say. */
export function toolVersion(file: string): string | null {
  try {
    return execFileSync(file, ['--version'], { encoding: 'utf8', timeout: 5000 }).trim().split(/\s+/).pop() ?? null;
  } catch {
    return null;
  }
}

function hostPidsCap(): number | undefined {
  try {
    return Math.floor(Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) / 2) || undefined;
  } catch {
    return undefined;
  }
}
