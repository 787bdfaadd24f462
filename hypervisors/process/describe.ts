// The plain-words statements of what confines process sandboxes: per sandbox (VmInfo.isolation,
// fixed at create and kept in its record) and per host (the startup banner line).
import { controllersOf } from './cgroups-plan';
import type { CgroupSupport } from './cgroups-detect';
import { SANDBOX_UID } from './bwrap';
import type { IsolationMode } from './config';
import type { SandboxRecord } from './record';

/** The isolation text of a new sandbox; `cgroupReason` says why there is no cgroup when there is none. */
export function describeSandbox(r: SandboxRecord, cgroupReason: string | null, uid = process.getuid?.()): string {
  const parts: string[] = [];
  if (r.mode === 'bubblewrap') {
    parts.push(
      'bubblewrap (pid, mount, ipc, uts, net, cgroup namespaces; ' +
        `uid ${SANDBOX_UID}, no capabilities, no user namespaces)`,
    );
  } else if (uid === 0) {
    parts.push(
      `none (no namespaces: commands run on the host as uid ${SANDBOX_UID} with no capabilities, ` +
        "see the host's files and processes, can signal other sandboxes, and may create user namespaces)",
    );
  } else {
    parts.push(`none (no namespaces: commands run on the host as the worker's uid ${uid})`);
  }
  const l = r.limits;
  if (r.cgroup) {
    const applied = [
      l.memoryMiB !== undefined ? `memory ${l.memoryMiB} MiB` : null,
      l.pids !== undefined ? `pids ${l.pids}` : null,
      l.cpus !== undefined ? `cpu ${l.cpus}` : null,
    ].filter(Boolean);
    const limitsText = applied.join(', ') || `no limits (controllers: ${controllersOf(r.cgroup).join(', ')})`;
    parts.push(`cgroup v${r.cgroup.version}: ${limitsText}`);
  } else {
    parts.push(`no cgroup limits (${cgroupReason ?? 'none recorded'})`);
  }
  parts.push(l.tmpMiB !== undefined ? `/tmp ${l.tmpMiB} MiB` : "/tmp: the host's, not limited");
  parts.push(l.diskMiB !== undefined ? `workspace ${l.diskMiB} MiB` : 'workspace: no quota');
  parts.push(
    r.network === 'slirp4netns'
      ? `network: slirp4netns (own namespace; ${egressText(r.egressAllow)})`
      : r.network === 'none'
        ? 'network: none (own namespace, loopback only)'
        : "network: the host's (not isolated)",
  );
  return parts.join('; ');
}

/** A note appended when this worker's setting differs from the sandbox's recorded mode. */
export function modeMismatchNote(recorded: IsolationMode, current: IsolationMode): string {
  if (recorded === current) return '';
  return recorded === 'none'
    ? ' [created with HOURGLASS_PROCESS_ISOLATION=none; this worker requires bubblewrap and refuses to start it ' +
        'or run commands in it]'
    : ' [created with bubblewrap, which it keeps although this worker is set to HOURGLASS_PROCESS_ISOLATION=none]';
}

export interface HostFacts {
  mode: IsolationMode;
  bwrap: string | null;
  bwrapVersion: string | null;
  network: boolean;
  slirp: string | null;
  iptablesRestore: string | null;
  networkAllow: string[];
  cgroups: CgroupSupport;
  cgroupParentPath: string;
  loopUnavailable: string | null;
  defaults: { cpus: number; memoryMiB: number; pids: number; tmpMiB: number; diskMiB: number };
  hostPidsCap?: number;
}

/** One line for the startup banner. Loud where sandboxes are weaker than the default or creates will fail. */
export function describeHost(h: HostFacts): string {
  const parts: string[] = [];
  if (h.mode === 'bubblewrap') {
    parts.push(
      h.bwrap
        ? `isolation bubblewrap${h.bwrapVersion ? ` ${h.bwrapVersion}` : ''} ` +
            `(namespaces, uid ${SANDBOX_UID}, no capabilities, seccomp: no user namespaces)`
        : 'isolation bubblewrap REQUIRED but bwrap is not installed: EVERY CREATE WILL FAIL ' +
            '(apt-get install bubblewrap, or opt out with HOURGLASS_PROCESS_ISOLATION=none)',
    );
  } else {
    parts.push(
      'isolation NONE (HOURGLASS_PROCESS_ISOLATION=none): commands run on the host without namespaces or seccomp',
    );
  }
  const cg = h.cgroups;
  parts.push(
    cg.version === 2
      ? `cgroup v2 (${cg.controllers.join(', ')}) at ${cg.mount}/${h.cgroupParentPath}`
      : cg.version === 1
        ? `cgroup v1 (${Object.keys(cg.mounts).join(', ')}) at ${h.cgroupParentPath} in each hierarchy`
        : `NO cgroup limits (${cg.reason})`,
  );
  if (cg.version !== null && h.hostPidsCap) {
    parts.push(`all sandboxes together: at most ${h.hostPidsCap} processes (half of pid_max)`);
  }
  const d = h.defaults;
  const workspace = d.diskMiB ? `${d.diskMiB} MiB` : 'no quota (HOURGLASS_PROCESS_DISK_MIB=0)';
  parts.push(
    `default limits: memory ${d.memoryMiB} MiB, pids ${d.pids}, cpu ${d.cpus}, /tmp ${d.tmpMiB} MiB, ` +
      `workspace ${workspace}`,
  );
  parts.push(
    h.loopUnavailable
      ? `workspace quotas UNAVAILABLE (${h.loopUnavailable}): creates with a quota will fail`
      : 'workspace quotas: ext4 images, loop-mounted',
  );
  if (h.mode === 'none') {
    parts.push("network: the host's (isolation none cannot separate it)");
  } else if (!h.network) {
    parts.push('network: none (loopback only)');
  } else if (!h.slirp) {
    parts.push('network ON but slirp4netns is not installed: EVERY CREATE WILL FAIL (apt-get install slirp4netns)');
  } else if (!h.iptablesRestore) {
    parts.push('network ON but iptables-restore is not installed: EVERY CREATE WILL FAIL (apt-get install iptables)');
  } else {
    parts.push(`network: slirp4netns (own namespace; ${egressText(h.networkAllow)})`);
  }
  return `process: ${parts.join('; ')}`;
}

/** What a network-enabled sandbox may reach. Sandboxes made before the egress filter have none. */
function egressText(allow: string[] | undefined): string {
  if (!allow) return 'host loopback unreachable; no egress filter (made before there was one)';
  const extra = allow.length ? `; allowed besides: ${allow.join(', ')}` : '';
  return `internet only: host loopback, the host's addresses and private, shared and link-local ranges refused${extra}`;
}
