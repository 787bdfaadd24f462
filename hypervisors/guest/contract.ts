// The exec contract every driver keeps, whatever runs the command (a bubblewrap namespace, qemu-ga
// over a socket, virsh, the PVE API): what the command sees and what the caller gets back.
// Pure constants and functions: the workflow imports this file too.
//
// Every driver guarantees, for the same command:
// - it runs with exactly the environment GUEST_PATH, HOME (see below) and the caller's variables (which
//   win), nothing inherited from the agent or the worker;
// - a program that does not exist exits EXIT_NOT_FOUND with notFoundMessage(program) on stderr;
// - at its timeout (DEFAULT_EXEC_TIMEOUT_SECONDS when the request gives none) the command and every
//   process it started are killed, and the result says timedOut with EXIT_TIMED_OUT and the output
//   captured until then;
// - a process killed by a signal exits 128 + N (exitCodeOf);
// - stdout and stderr are each cut at EXEC_OUTPUT_CAP_BYTES, ending with truncationMarker.
//
// HOME is the home of the user commands run as: /root in a VM guest (VM_GUEST_HOME: commands run
// as root), and in a process sandbox (uid 65534, who owns nothing else) its workspace, which is also
// where its commands start: /work, or the workspace's host directory without isolation.

/** The one PATH a command runs with, on every driver. */
export const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** HOME of a command in a VM guest (qemu, libvirt, proxmox). */
export const VM_GUEST_HOME = '/root';

/** When a request gives no timeout. The API caps requests at MAX_EXEC_TIMEOUT_SECONDS. */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 300;
export const MAX_EXEC_TIMEOUT_SECONDS = 3600;

/** A timed-out command (its whole process tree killed) exits 124, as with coreutils' timeout(1). */
export const EXIT_TIMED_OUT = 124;
/** A command killed on request (POST …/execs/:execId/kill) ends as if by SIGKILL: 128 + 9. */
export const EXIT_KILLED = 137;
/** A program that does not exist exits 127, as in a shell, with a stderr line saying so. */
export const EXIT_NOT_FOUND = 127;

/** Bytes of stdout and of stderr an exec returns (results travel through workflow history). */
export const EXEC_OUTPUT_CAP_BYTES = 256 * 1024;
export const truncationMarker = (_dropped: number) => `\n…[truncated at ${EXEC_OUTPUT_CAP_BYTES} bytes]`;

/** A process killed by signal N has no exit code: report it like a shell does, 128 + N. */
export function exitCodeOf(status: { exitcode?: number; signal?: number }): number {
  return status.exitcode ?? (status.signal !== undefined ? 128 + status.signal : -1);
}

/** Names a command's environment may set (also what env(1) and `env -S` can pass on unambiguously). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The stderr line of a program that does not exist (LAUNCH_SCRIPT prints the same). */
export const notFoundMessage = (program: string) => `hourglass: ${program}: not found\n`;

/**
 * Every driver starts a command as `/bin/sh -c LAUNCH_SCRIPT hourglass-exec PROGRAM ARGS…` (see
 * viaLaunchScript): the shell looks PROGRAM up in the command's own PATH, answers a missing one the
 * same way everywhere (agents and env(1) each word it their own way, qemu-ga as an error), and
 * then becomes the program, so the pid the driver knows is the program's. POSIX sh and busybox ash.
 */
export const LAUNCH_SCRIPT =
  'command -v "$1" >/dev/null 2>&1 || { printf \'hourglass: %s: not found\\n\' "$1" >&2; exit 127; }; exec "$@"';

export function viaLaunchScript(command: string[]): string[] {
  return ['/bin/sh', '-c', LAUNCH_SCRIPT, 'hourglass-exec', ...command];
}
