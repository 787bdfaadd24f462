// Running one command in a process sandbox. With bubblewrap: nsenter into the holder's namespaces,
// bwrap there only to load the seccomp filter, setpriv to drop to the sandbox user, `env -i` to
// set the caller's environment, then the program. With isolation none: the same minus the
// namespaces and the filter, in the sandbox's work dir on the host. Either way the launcher
// (launcher.ts) joins the sandbox's cgroup first.
import { BusyError } from '../errors';
import { planExec } from '../guest/exec-plan';
import { runOnHost, type HostStream } from '../guest/host-exec';
import { isAlive } from '../common/proc-identity';
import type { ExecRequest, ExecResult } from '../types';
import { dropPrivilegesArgs, SECCOMP_FD, seccompWrapperArgs } from './bwrap';
import { cgroupExists } from './cgroups';
import { cgroupProcsFiles, sandboxCgroupDirs } from './cgroups-plan';
import { TOOLS_PATH } from './tools-path';
import { launchArgv } from './launcher';
import type { SandboxRecord } from './record';
import type { SandboxFiles } from './sandbox-files';
import { isMounted, workspaceMountedIn } from './workspace';

/** Sandbox commands are the first the OOM killer takes, in their cgroup and on the host. */
const COMMAND_OOM_SCORE_ADJ = 1000;

const ENV_PREFIX = 'HOURGLASS_ENV_';

/**
 * Runs `req` in sandbox `id` (record `r`); refuses (BusyError) when the sandbox is not running whole.
 * With `stream`, its output is handed over as it is read and its stdin fed (host-exec.ts).
 */
export async function runInSandbox(
  id: string,
  r: SandboxRecord,
  req: ExecRequest,
  files: SandboxFiles,
  bwrap: string | null,
  signal?: AbortSignal,
  stream?: HostStream,
): Promise<ExecResult> {
  // HOME is the workspace, where commands start: the one place uid 65534 may write (contract.ts).
  const plan = planExec(id, req, r.mode === 'bubblewrap' ? '/work' : files.workDir(id));
  const { command, hostEnv } = commandWithEnv(plan.env, plan.argv);
  if (r.cgroup && !(await cgroupExists(r.cgroup))) {
    throw new BusyError(
      `sandbox ${id} is not running: its cgroup ${sandboxCgroupDirs(r.cgroup)[0]} is gone (host restarted?); ` +
        `start it first`,
    );
  }
  const joinCgroups = r.cgroup ? cgroupProcsFiles(r.cgroup) : [];
  const asSandboxUser = process.getuid?.() === 0 ? dropPrivilegesArgs() : [];

  if (r.mode === 'none') {
    if (r.stopped) throw new BusyError(`sandbox ${id} is stopped; start it first`);
    // No namespace holds the mount here: a workspace gone (host restarted) must not become an unlimited directory.
    if (r.workspace && !(await isMounted(files.workDir(id)))) {
      throw new BusyError(
        `sandbox ${id} is not running: its workspace is not mounted (host restarted?); start it first`,
      );
    }
    const argv = launchArgv({ joinCgroups, oomScoreAdj: COMMAND_OOM_SCORE_ADJ }, [...asSandboxUser, ...command]);
    const env = { PATH: TOOLS_PATH, ...hostEnv };
    return runOnHost(argv, { cwd: files.workDir(id), env, timeoutMs: plan.timeoutMs, signal }, stream);
  }
  if (!r.holder || !(await isAlive(r.holder))) {
    throw new BusyError(`sandbox ${id} is not running (its namespace holder is gone); start it first`);
  }
  // Without its mount /work is the directory beneath it, which has no quota: fail closed.
  if (r.workspace && !(await workspaceMountedIn(r.holder.pid))) {
    throw new BusyError(`sandbox ${id}: its workspace is not mounted; start it again`);
  }
  // nsenter itself runs with a fixed environment (the caller's variables could otherwise preload
  // code into a root process on the host: they ride along only under a prefix); inside, bwrap
  // loads the seccomp filter, setpriv drops to the sandbox user, `env -i` sets the caller's
  // variables from the prefixed ones, and the launch script (contract.ts) starts the program.
  const argv = launchArgv(
    {
      joinCgroups,
      open: [{ fd: SECCOMP_FD, file: await files.seccompFilter(), mode: 'read' }],
      oomScoreAdj: COMMAND_OOM_SCORE_ADJ,
    },
    [
      'nsenter',
      '-t',
      String(r.holder.pid),
      '-a',
      '-r',
      '--',
      ...seccompWrapperArgs(bwrap ?? 'bwrap'),
      ...asSandboxUser,
      ...command,
    ],
  );
  return runOnHost(argv, { env: { PATH: TOOLS_PATH, ...hostEnv }, timeoutMs: plan.timeoutMs, signal }, stream);
}

/**
 * The command behind `env -i`, and the environment to run the chain with. Values never appear in
 * an argv (any local user can read those in /proc): they travel in the environment under a prefix
 * no program acts on (an unprefixed LD_PRELOAD would run code in the root processes on the way),
 * and the last step, already the sandbox user, expands them back with `env -S 'NAME=${PREFIX_NAME}'`.
 */
function commandWithEnv(
  env: Record<string, string>,
  command: string[],
): { command: string[]; hostEnv: Record<string, string> } {
  const names = Object.keys(env);
  const hostEnv = Object.fromEntries(names.map((k) => [`${ENV_PREFIX}${k}`, env[k]!]));
  const assignments = names.map((k) => `${k}=\${${ENV_PREFIX}${k}}`).join(' ');
  return { command: ['env', '-i', '-S', assignments, ...command], hostEnv };
}
