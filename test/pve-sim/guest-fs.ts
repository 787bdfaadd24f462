// A simulated VM's own disk: its /root and /tmp are directories of the simulator (vm-<id>/root,
// vm-<id>/tmp). Commands run in a mount namespace where those are bind-mounted over the host's /root
// and /tmp (guestCommand); file-read/file-write map guest paths the same way (hostPath), following
// symlinks as the guest would. Other guest paths are not the simulated VM's: they are refused.
import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';

const OWN_DIRS = ['root', 'tmp'] as const;
const MAX_LINKS = 40; // Linux's ELOOP limit

export class GuestFs {
  constructor(readonly dir: string) {
    for (const d of OWN_DIRS) mkdirSync(join(dir, d), { recursive: true, mode: d === 'tmp' ? 0o1777 : 0o700 });
  }

  /** argv that runs `command` with this VM's /root and /tmp in place, from /root (the pid stays the command's). */
  guestCommand(command: string[]): string[] {
    const script = 'mount --bind "$0/root" /root && mount --bind "$0/tmp" /tmp && cd /root && exec "$@"';
    return ['unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', script, this.dir, ...command];
  }

  /** The host path of a guest path, symlinks resolved as the guest sees them. null: not this VM's file. */
  hostPath(guestPath: string): string | null {
    if (!posix.isAbsolute(guestPath)) return null;
    let rest = guestPath.split('/').filter(Boolean);
    let done: string[] = [];
    for (let links = 0; rest.length > 0;) {
      const name = rest.shift()!;
      if (name === '.') continue;
      if (name === '..') {
        done.pop();
        continue;
      }
      const candidate = [...done, name];
      const host = this.mapped(candidate);
      if (host === null) return null;
      let target: string | null = null;
      try {
        if (lstatSync(host).isSymbolicLink()) target = readlinkSync(host);
      } catch {
        return this.mapped([...candidate, ...rest]); // missing: the open fails (or creates it), as in the guest
      }
      if (target === null) {
        done = candidate;
        continue;
      }
      if (++links > MAX_LINKS) return host;
      rest = [...target.split('/').filter(Boolean), ...rest];
      if (posix.isAbsolute(target)) done = [];
    }
    return this.mapped(done);
  }

  private mapped(parts: string[]): string | null {
    const [top, ...below] = parts;
    if (!OWN_DIRS.includes(top as (typeof OWN_DIRS)[number])) return null;
    return join(this.dir, top!, ...below);
  }
}
