// The namespace holder of a bubblewrap sandbox: `bwrap … sleep infinity`, started detached so the
// sandbox outlives the worker. bwrap's init (pid 1 inside) owns the sandbox's namespaces; commands
// enter them with nsenter (command.ts), and killing it ends everything inside (end-processes.ts).
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BusyError } from '../errors';
import { recordProcess, signalIfOurs } from '../common/proc-identity';
import { spawnDetached } from '../common/spawner/index';
import { holderBwrapArgs, INFO_FD, READY_FD, SECCOMP_FD } from './bwrap';
import { cgroupProcsFiles } from './cgroups-plan';
import { DEFAULT_LIMITS } from './config';
import { TOOLS_PATH } from './tools-path';
import { launchArgv } from './launcher';
import { RESOLV_CONF, resolvConfTarget } from './network';
import { writeRecord, type SandboxRecord } from './record';
import type { SandboxFiles } from './sandbox-files';

const HOLDER_READY_TIMEOUT_MS = 10_000;

/**
 * Starts the holder of a sandbox whose processes have all ended, waits until it is built, and
 * records it (in `r` too). A sandbox with slirp4netns gets its resolv.conf here; its network
 * itself starts once the holder runs (network.ts).
 */
export async function startHolder(r: SandboxRecord, files: SandboxFiles, bwrap: string): Promise<void> {
  const dir = files.dir(r.id);
  const infoPath = path.join(dir, 'bwrap-info.json');
  const readyPath = path.join(dir, 'holder-ready');
  await rm(infoPath, { force: true });
  await rm(readyPath, { force: true });
  let resolvConf: { source: string; target: string } | undefined;
  if (r.network === 'slirp4netns') {
    resolvConf = { source: path.join(dir, 'resolv.conf'), target: resolvConfTarget() };
    await writeFile(resolvConf.source, RESOLV_CONF);
  }
  const argv = launchArgv(
    {
      joinCgroups: r.cgroup ? cgroupProcsFiles(r.cgroup) : [],
      open: [
        { fd: SECCOMP_FD, file: await files.seccompFilter(), mode: 'read' },
        { fd: INFO_FD, file: infoPath, mode: 'write' },
        { fd: READY_FD, file: readyPath, mode: 'write' },
      ],
    },
    // A record from before /tmp was limited gets the default size (tighter than it had, never looser).
    [
      bwrap,
      ...holderBwrapArgs({
        workDir: files.workDir(r.id),
        tmpMiB: r.limits.tmpMiB ?? DEFAULT_LIMITS.tmpMiB,
        resolvConf,
      }),
    ],
  );
  const logPath = path.join(dir, 'holder.log');
  let exited: string | null = null;
  await spawnDetached(
    { file: argv[0]!, args: argv.slice(1), env: { PATH: TOOLS_PATH }, logFile: logPath },
    (how) => (exited = how),
  );
  const pid = await waitForHolder(r.id, infoPath, readyPath, logPath, () => exited, HOLDER_READY_TIMEOUT_MS);
  const holder = await recordProcess(pid);
  try {
    await writeRecord(dir, { ...r, holder, slirp: undefined });
  } catch (err) {
    // Destroyed meanwhile (a start racing a destroy): the holder must not outlive its record.
    await signalIfOurs(holder, 'SIGKILL');
    throw err;
  }
  r.holder = holder;
  r.slirp = undefined;
}

/** The holder's pid (bwrap's info) once its command says the sandbox is built. */
async function waitForHolder(
  id: string,
  infoPath: string,
  readyPath: string,
  logPath: string,
  exited: () => string | null,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited()) {
    try {
      const pid = JSON.parse(await readFile(infoPath, 'utf8'))['child-pid'];
      if (typeof pid === 'number' && (await readFile(readyPath, 'utf8')).startsWith('ready')) return pid;
    } catch {
      /* bwrap has not written them yet */
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const log = (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ');
  throw new BusyError(
    `sandbox ${id}: bubblewrap ${exited() ?? `was not ready within ${timeoutMs} ms`}: ${log || 'no output'} ` +
      `(${logPath})`,
  );
}
