// Ending a sandbox's processes, for stop, destroy, and before a holder starts (one holder per
// sandbox): the recorded ones by their identity, the rest by cgroup or, without one, by command line.
import { BusyError } from '../errors';
import { signalIfOurs, waitForExit } from '../common/proc-identity';
import { findProcesses, type ProcessInfo } from '../common/process-table';
import { cgroupExists, emptyCgroup } from './cgroups';
import { slirpMarker } from './network';
import type { SandboxRecord } from './record';
import type { SandboxFiles } from './sandbox-files';
import type { WorkspaceImages } from './workspace';

/**
 * Ends every process of the sandbox: slirp4netns, then the holder (SIGKILL to pid 1 of its pid
 * namespace: the kernel kills everything inside), then whatever is left in its cgroup (commands
 * of isolation none, launchers, strays of a create that died before recording them). Without a
 * cgroup, strays are found by their command lines. Then the workspace's loop device is released.
 * `r` is null for a sandbox whose directory exists without a record.
 */
export async function endProcesses(
  r: SandboxRecord | null,
  id: string,
  files: SandboxFiles,
  workspaces: WorkspaceImages,
): Promise<void> {
  await endSlirp(r, id);
  if (r?.holder) await signalIfOurs(r.holder, 'SIGKILL');
  if (r?.cgroup && (await cgroupExists(r.cgroup))) {
    await emptyCgroup(r.cgroup, id);
  } else {
    const strays = await straysByCommandLine(id, files);
    const pids = new Set(strays.map((p) => p.pid));
    // pid 1 of each namespace first (a bwrap whose parent is the outer bwrap), then the rest.
    for (const p of strays.filter((s) => pids.has(s.ppid))) await signalIfOurs(p, 'SIGKILL');
    for (const p of strays) if (!(await waitForExit(p, 2000))) await signalIfOurs(p, 'SIGKILL');
    for (const p of strays) {
      if (!(await waitForExit(p, 3000))) {
        throw new BusyError(`sandbox ${id}: pid ${p.pid} did not exit after SIGKILL`);
      }
    }
  }
  if (r?.holder && !(await waitForExit(r.holder, 5000, 5))) {
    throw new BusyError(`sandbox ${id}: holder pid ${r.holder.pid} did not exit after SIGKILL`);
  }
  // The workspace's loop device goes with the namespace, asynchronously; wait for it (detaching
  // it if it was never marked autoclear), so a start right after attaches a device of its own.
  if (r?.workspace && r.loop) {
    await workspaces.releaseLoop(r.workspace, r.loop);
    r.loop = undefined;
  }
}

/** Ends the recorded slirp4netns, if any. */
export async function endSlirp(r: SandboxRecord | null, id: string): Promise<void> {
  if (!r?.slirp) return;
  await signalIfOurs(r.slirp, 'SIGKILL');
  if (!(await waitForExit(r.slirp, 3000, 5))) {
    throw new BusyError(`sandbox ${id}: slirp4netns pid ${r.slirp.pid} did not exit after SIGKILL`);
  }
}

/** bwrap processes binding this sandbox's work dir, and its slirp4netns (by argv[0]). */
async function straysByCommandLine(id: string, files: SandboxFiles): Promise<ProcessInfo[]> {
  const work = files.workDir(id);
  const marker = slirpMarker(files.dir(id));
  const found = await findProcesses(
    (argv) => (argv[0]?.endsWith('bwrap') && argv.includes(work)) || argv[0] === marker,
  );
  return found.filter((p) => !p.exited);
}
