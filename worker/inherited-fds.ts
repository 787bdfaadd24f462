// Only stdin, stdout and stderr may reach sandboxes. A descriptor the service inherited from
// whoever started it (`exec 200>>file; npm start`) has no close-on-exec flag, so every child the
// service spawns — bwrap, QEMU, and through them the sandboxes — would inherit it too. Node and
// libuv open all their own descriptors with O_CLOEXEC, so closing the ones without it at start-up
// only drops what was inherited.
import { closeSync, readFileSync, readdirSync } from 'node:fs';

// From <asm-generic/fcntl.h>; /proc/<pid>/fdinfo/<fd> prints the open flags in octal.
const O_CLOEXEC = 0o2000000;

/** Closes every inherited descriptor ≥ 3 that would survive exec; returns the ones closed. */
export function closeInheritedFds(): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return []; // no procfs (not Linux): nothing to inspect
  }
  // The IPC channel of a parent Node process (tsx's CLI, child_process.fork) must stay open.
  const keep = new Set([Number(process.env.NODE_CHANNEL_FD ?? -1)]);
  const closed: number[] = [];
  for (const entry of entries) {
    const fd = Number(entry);
    if (!Number.isInteger(fd) || fd < 3 || keep.has(fd)) continue;
    const flags = openFlags(fd);
    // null: the descriptor vanished between listing and reading (it was readdir's own).
    if (flags === null || flags & O_CLOEXEC) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      /* already closed */
    }
  }
  return closed;
}

function openFlags(fd: number): number | null {
  try {
    const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return match ? parseInt(match[1]!, 8) : null;
  } catch {
    return null;
  }
}
