// The exec contract every driver keeps, whatever runs the command (a bubblewrap namespace, qemu-ga
// over a socket, virsh, the PVE API): what the command sees and what the caller gets back.
// Pure constants and functions: the workflow imports this file too.

/** The one PATH a command runs with, on every driver. */
export const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** When a request gives no timeout. The API caps requests at MAX_EXEC_TIMEOUT_SECONDS. */
export const DEFAULT_EXEC_TIMEOUT_SECONDS = 300;
export const MAX_EXEC_TIMEOUT_SECONDS = 3600;

/** A timed-out command (its whole process tree killed) exits 124, as with coreutils' timeout(1). */
export const EXIT_TIMED_OUT = 124;
/** A program that does not exist exits 127, as in a shell, with a stderr line saying so. */
export const EXIT_NOT_FOUND = 127;

/** Bytes of stdout and of stderr an exec returns (results travel through workflow history). */
export const EXEC_OUTPUT_CAP_BYTES = 256 * 1024;
export const truncationMarker = (_dropped: number) => `\n…[truncated at ${EXEC_OUTPUT_CAP_BYTES} bytes]`;

/** A process killed by signal N has no exit code: report it like a shell does, 128 + N. */
export function exitCodeOf(status: { exitcode?: number; signal?: number }): number {
  return status.exitcode ?? (status.signal !== undefined ? 128 + status.signal : -1);
}
