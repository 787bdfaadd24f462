// The size limit of a process sandbox's workspace (/work): a sparse ext4 image per sandbox,
// loop-mounted on its work directory. The kernel enforces the size (ENOSPC), it survives stop/start
// and worker restarts (the image is a file in the state dir), and it costs one cp of a mostly-holes
// file plus one mount per create: the filesystem is made once per size, as a template.
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, realpath, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HypervisorError } from './errors';
import { readMounts } from './process-mountinfo';
import { runCommand } from './run-command';

/** Kept in sandbox.json. */
export interface WorkspaceRecord {
  image: string;
  sizeMiB: number;
}

const TOOLS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const SANDBOX_UID = 65534;

export class WorkspaceImages {
  private readonly templates = new Map<number, Promise<string>>();

  constructor(private readonly templatesDir: string) {}

  /** Why this host cannot loop-mount images (so a quota cannot be enforced), or null. */
  static unavailableReason(): string | null {
    if (process.getuid?.() !== 0) return `loop mounts need root (the worker runs as uid ${process.getuid?.()})`;
    if (!existsSync('/dev/loop-control')) return '/dev/loop-control is missing (no loop device support)';
    if (!TOOLS_PATH.split(':').some((d) => isFile(path.join(d, 'mkfs.ext4')))) return 'mkfs.ext4 is not installed (Debian package e2fsprogs)';
    return null;
  }

  /** Creates the sandbox's image from the template if missing, and mounts it if it is not. Idempotent. */
  async ensureMounted(ws: WorkspaceRecord, mountPoint: string): Promise<void> {
    if (!(await isFileAsync(ws.image))) {
      const template = await this.template(ws.sizeMiB);
      const partial = `${ws.image}.${randomBytes(4).toString('hex')}.tmp`;
      // --sparse=always keeps the template's holes: ~1 MiB on disk whatever the size.
      await tool(['cp', '--sparse=always', template, partial], `copy workspace image to ${ws.image}`);
      await rename(partial, ws.image);
    }
    if (await isMounted(mountPoint)) return;
    await mkdir(mountPoint, { recursive: true });
    // nosuid, nodev: a file the sandbox writes there never grants privileges to anyone.
    await tool(['mount', '-o', 'loop,nosuid,nodev', ws.image, mountPoint], `mount workspace ${ws.image}`);
  }

  /**
   * Unmounts the workspace (the loop device goes with it: mount -o loop sets autoclear). A mount
   * still busy after the sandbox's processes are gone is detached lazily, so destroy never hangs.
   */
  async unmount(mountPoint: string): Promise<void> {
    for (let attempt = 0; await isMounted(mountPoint); attempt++) {
      if (attempt > 20) throw new HypervisorError(`workspace ${mountPoint} is still mounted after ${attempt} unmounts`, 'workspace_busy');
      const r = await runCommand(['umount', ...(attempt >= 10 ? ['-l'] : []), mountPoint], { env: { PATH: TOOLS_PATH }, timeoutMs: 30_000 });
      if (r.exitCode !== 0) await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** mkfs once per size; later creates copy it. */
  private template(sizeMiB: number): Promise<string> {
    let made = this.templates.get(sizeMiB);
    if (!made) {
      made = this.makeTemplate(sizeMiB);
      made.catch(() => this.templates.delete(sizeMiB));
      this.templates.set(sizeMiB, made);
    }
    return made;
  }

  private async makeTemplate(sizeMiB: number): Promise<string> {
    const file = path.join(this.templatesDir, `ext4-${sizeMiB}MiB.img`);
    if (await isFileAsync(file)) return file;
    await mkdir(this.templatesDir, { recursive: true, mode: 0o700 });
    const partial = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(partial, '', { mode: 0o600 });
    await truncate(partial, sizeMiB * 1024 * 1024);
    // -m 0: no blocks reserved for root (the sandbox is never root). root_owner: /work belongs to
    // the sandbox user. Inode tables and journal are zeroed now, in the template, so the kernel's
    // lazy init never writes them per sandbox (and cp keeps them as holes).
    await tool(
      ['mkfs.ext4', '-q', '-F', '-m', '0', '-E', `root_owner=${SANDBOX_UID}:${SANDBOX_UID},lazy_itable_init=0,lazy_journal_init=0`, partial],
      `make the ${sizeMiB} MiB workspace template`,
    );
    // An empty /work, not one holding lost+found (e2fsck recreates it if it ever needs it).
    await runCommand(['debugfs', '-w', '-R', 'rmdir lost+found', partial], { env: { PATH: TOOLS_PATH }, timeoutMs: 30_000 });
    await rename(partial, file);
    return file;
  }
}

export async function isMounted(mountPoint: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(mountPoint);
  } catch {
    return false;
  }
  return (await readMounts()).some((m) => m.mountPoint === real);
}

export async function removeImage(ws: WorkspaceRecord): Promise<void> {
  await rm(ws.image, { force: true });
}

async function tool(argv: string[], what: string): Promise<void> {
  const r = await runCommand(argv, { env: { PATH: TOOLS_PATH }, timeoutMs: 120_000 });
  if (r.exitCode !== 0) {
    throw new HypervisorError(`could not ${what}: ${argv[0]} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`, 'workspace_unavailable');
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

async function isFileAsync(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}
