// Outbound network for a process sandbox without sharing the host's: the sandbox keeps its own
// network namespace (its own loopback), and slirp4netns gives it a tap device whose traffic it
// relays from user space as ordinary sockets of the host. --disable-host-loopback makes 10.0.2.2
// (slirp's alias for the host) refuse, so services bound to the host's loopback stay out of reach.
import { readlinkSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { HypervisorError } from '../errors';
import { cgroupProcsFiles } from './cgroups-plan';
import { applyEgressRules } from './egress';
import type { HostSupport } from './host-support';
import { TOOLS_PATH } from './tools-path';
import { launchArgv } from './launcher';
import type { SandboxRecord } from './record';
import type { SandboxFiles } from './sandbox-files';
import { recordProcess, signalIfOurs, type RecordedProcess } from '../common/proc-identity';
import { spawnDetached } from '../common/spawner/index';

/** slirp4netns's built-in DNS forwarder (it relays to the host's resolvers). */
export const SLIRP_DNS = '10.0.2.3';
export const RESOLV_CONF = `nameserver ${SLIRP_DNS}\n`;

/**
 * Where the generated resolv.conf is bound inside the sandbox. /etc is the host's, read-only; when
 * its resolv.conf is a symlink (systemd-resolved, resolvconf), bwrap cannot bind over the link
 * itself, so the file goes where the link points, which bwrap creates in the sandbox's root.
 */
export function resolvConfTarget(): string {
  try {
    return path.resolve('/etc', readlinkSync('/etc/resolv.conf'));
  } catch {
    return '/etc/resolv.conf'; // a plain file (or none): bind over it
  }
}

/** argv[0] of a sandbox's slirp4netns, so one started by a worker that died unrecorded is found. */
export function slirpMarker(sandboxDir: string): string {
  return `slirp4netns[${sandboxDir}]`;
}

/**
 * Brings up the network of a running holder (`r.holder`) whose slirp4netns has ended: its egress
 * filter, then a fresh slirp4netns, recorded (in `r` too).
 */
export async function startNetwork(r: SandboxRecord, host: HostSupport, files: SandboxFiles): Promise<void> {
  // Filter first: there is no route out until slirp4netns configures tap0.
  if (r.egressAllow) await applyEgressRules(host.iptablesRestore ?? 'iptables-restore', r.holder!.pid, r.egressAllow);
  const slirp = await startSlirp({
    slirp: host.slirp!,
    holderPid: r.holder!.pid,
    sandboxDir: files.dir(r.id),
    joinCgroups: r.cgroup ? cgroupProcsFiles(r.cgroup) : [],
  });
  r.slirp = slirp;
  try {
    await files.write(r);
  } catch (err) {
    await signalIfOurs(slirp, 'SIGKILL');
    throw err;
  }
}

export interface SlirpStart {
  slirp: string;
  /** The sandbox's namespace holder (its network namespace is the one slirp joins). */
  holderPid: number;
  sandboxDir: string;
  joinCgroups: string[];
}

/**
 * Starts slirp4netns detached (it must outlive the worker) and waits for its ready signal. It runs
 * as root on the host and parses the sandbox's packets, so it confines itself too:
 * --enable-sandbox (its own mount namespace, capabilities dropped) and --enable-seccomp. It joins
 * the sandbox's cgroup, so relaying counts against the sandbox's own CPU and memory.
 */
export async function startSlirp(o: SlirpStart, timeoutMs = 10_000): Promise<RecordedProcess> {
  const readyFile = path.join(o.sandboxDir, 'slirp-ready');
  const logFile = path.join(o.sandboxDir, 'slirp.log');
  await rm(readyFile, { force: true });
  const argv = launchArgv(
    { joinCgroups: o.joinCgroups, open: [{ fd: 3, file: readyFile, mode: 'write' }], argv0: slirpMarker(o.sandboxDir) },
    [
      o.slirp,
      '--configure',
      '--mtu=65520',
      '--disable-host-loopback',
      '--enable-sandbox',
      '--enable-seccomp',
      '--ready-fd=3',
      String(o.holderPid),
      'tap0',
    ],
  );
  let exited: string | null = null;
  let pid: number | undefined;
  try {
    pid = await spawnDetached(
      { file: argv[0]!, args: argv.slice(1), env: { PATH: TOOLS_PATH }, logFile, stdoutToLog: true },
      (how) => (exited = how),
    );
  } catch (err) {
    exited = (err as Error).message;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited || pid === undefined) break;
    if ((await readFile(readyFile, 'utf8').catch(() => '')).includes('1')) return recordProcess(pid);
    await new Promise((r) => setTimeout(r, 10));
  }
  const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ');
  if (pid !== undefined && !exited) process.kill(pid, 'SIGKILL');
  throw new HypervisorError(
    `slirp4netns ${exited ?? `not ready after ${timeoutMs} ms`}: ${tail || 'no output'} (${logFile})`,
    'network_unavailable',
  );
}
