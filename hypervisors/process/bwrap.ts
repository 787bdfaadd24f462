// The bubblewrap and setpriv command lines of a process sandbox.
import { GUEST_PATH } from '../guest/contract';

/** Commands run as this unprivileged user (nobody): no capabilities, no setuid gains. */
export const SANDBOX_UID = 65534;

/** Descriptors the launcher opens for bwrap. */
export const SECCOMP_FD = 3;
export const INFO_FD = 4;
/** The holder's command says "ready" here once bwrap has built the sandbox's whole tree. */
export const READY_FD = 5;

export interface HolderLayout {
  /** Host directory bound on /work (the workspace image is mounted over it inside, when there is a quota). */
  workDir: string;
  tmpMiB: number;
  /** A generated resolv.conf and where it goes inside (network through slirp4netns). */
  resolvConf?: { source: string; target: string };
}

/**
 * The namespace holder: `bwrap … sleep infinity`, pid 1 of the sandbox's pid namespace (bwrap's
 * own init reaps orphans, so background processes never pile up as zombies against pids.max).
 * Every namespace but the user one is new; the network one has only loopback until slirp4netns
 * adds a tap. It keeps no capabilities and runs under the seccomp filter read from SECCOMP_FD.
 */
export function holderBwrapArgs(l: HolderLayout): string[] {
  return [
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-net',
    '--unshare-cgroup',
    '--ro-bind',
    '/usr',
    '/usr',
    '--symlink',
    'usr/bin',
    '/bin',
    '--symlink',
    'usr/lib',
    '/lib',
    '--symlink',
    'usr/lib64',
    '/lib64',
    '--symlink',
    'usr/sbin',
    '/sbin',
    '--ro-bind',
    '/etc',
    '/etc',
    ...(l.resolvConf ? ['--ro-bind', l.resolvConf.source, l.resolvConf.target] : []),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    // --size applies to the next --tmpfs (bwrap ≥ 0.5); its pages count against the memory cgroup too.
    '--perms',
    '1777',
    '--size',
    String(l.tmpMiB * 1024 * 1024),
    '--tmpfs',
    '/tmp',
    // The holder's cwd is /, not /work: a workspace mounted over /work later must not be shadowed
    // for whoever starts from the holder's cwd.
    '--bind',
    l.workDir,
    '/work',
    '--chdir',
    '/',
    '--hostname',
    'sandbox',
    '--clearenv',
    '--setenv',
    'PATH',
    GUEST_PATH,
    '--cap-drop',
    'ALL',
    '--seccomp',
    String(SECCOMP_FD),
    '--info-fd',
    String(INFO_FD),
    // bwrap reports the child's pid before the child has set up the mounts: entering its
    // namespaces then finds a half-built tree. The command runs only once the tree is complete.
    'sh',
    '-c',
    `echo ready >&${READY_FD}; exec sleep infinity ${READY_FD}>&-`,
  ];
}

/**
 * Run inside the sandbox's namespaces (after nsenter) to put a command under the seccomp filter:
 * bwrap is the one tool at hand that loads a compiled filter, and it insists on a mount namespace
 * of its own, so it gets a copy of the sandbox's own tree (`--dev-bind / /`: same files, same /dev).
 */
export function seccompWrapperArgs(bwrap: string): string[] {
  return [bwrap, '--dev-bind', '/', '/', '--chdir', '/work', '--seccomp', String(SECCOMP_FD), '--'];
}

/** Drops to the sandbox user: no groups, no capabilities (bounding and inheritable sets too), no_new_privs. */
export function dropPrivilegesArgs(): string[] {
  return [
    'setpriv',
    `--reuid=${SANDBOX_UID}`,
    `--regid=${SANDBOX_UID}`,
    '--clear-groups',
    '--no-new-privs',
    '--bounding-set=-all',
    '--inh-caps=-all',
    '--',
  ];
}
