// The size limit of a process sandbox's workspace (/work): a sparse ext4 image per sandbox on a
// loop device. The kernel enforces the size (ENOSPC), it survives stop/start and worker restarts
// (the image is a file in the state dir), and it costs one cp of a mostly-holes file plus one mount
// per start: the filesystem is made once per size, as a template.
//
// With bubblewrap the mount lives only in the sandbox's own mount namespace, never in the host's:
// every new mount namespace (each holder bwrap makes) copies the host's whole mount table, so with
// 1,000 workspaces mounted on the host creates were ~2× and destroys ~3× slower (bench/RESULTS.md).
// It goes away with the namespace, and the loop device with it (autoclear). Without bubblewrap it
// is mounted on the host's work dir.
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, realpath, rename, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HypervisorError } from '../errors';
import { KeyedMutex } from '../common/keyed-mutex';
import { launchArgv } from './launcher';
import { parseMountinfo, readMounts } from './mountinfo';
import { runCommand } from '../common/run-command';
import { TOOLS_PATH } from './tools-path';
import { SANDBOX_UID } from './bwrap';

/** Kept in sandbox.json. */
export interface WorkspaceRecord {
  image: string;
  sizeMiB: number;
}

/** Where the workspace is mounted inside a bubblewrap sandbox. */
const SANDBOX_WORK = '/work';

/**
 * Runs with the device open on fd 3. While it is open nobody can detach it (LOOP_CLR_FD on a
 * device with other openers only marks it autoclear), so the check that it serves this sandbox's
 * image holds through the mount. The sandbox's /dev has no loop devices: the node opened on the
 * host is named by /proc/self/fd inside, and nsenter -p makes /proc/self this process in the
 * sandbox's procfs. nosuid, nodev: a file the sandbox writes there never grants privileges.
 */
const MOUNT_IN_SANDBOX = `
loop=$1 image=$2 pid=$3 target=$4
backing=$(cat "/sys/block/$loop/loop/backing_file") || exit 1
[[ $backing == "$image" ]] || { echo "/dev/$loop serves $backing, not $image" >&2; exit 1; }
exec nsenter -t "$pid" -m -p -- mount --no-canonicalize -t ext4 -o nosuid,nodev /proc/self/fd/3 "$target"
`;

export class WorkspaceImages {
  private readonly templates = new Map<number, Promise<string>>();
  private readonly attaching = new KeyedMutex();

  constructor(private readonly templatesDir: string) {}

  /** Why this host cannot loop-mount images (so a quota cannot be enforced), or null. */
  static unavailableReason(): string | null {
    if (process.getuid?.() !== 0) return `loop mounts need root (the worker runs as uid ${process.getuid?.()})`;
    if (!existsSync('/dev/loop-control')) return '/dev/loop-control is missing (no loop device support)';
    if (!TOOLS_PATH.split(':').some((d) => isFile(path.join(d, 'mkfs.ext4')))) {
      return 'mkfs.ext4 is not installed (Debian package e2fsprogs)';
    }
    return null;
  }

  /** The sandbox's image, copied from the template if missing. Idempotent. */
  async ensureImage(ws: WorkspaceRecord): Promise<void> {
    if (await isFileAsync(ws.image)) return;
    const template = await this.template(ws.sizeMiB);
    const partial = `${ws.image}.${randomBytes(4).toString('hex')}.tmp`;
    // --sparse=always keeps the template's holes: ~1 MiB on disk whatever the size.
    await tool(['cp', '--sparse=always', template, partial], `copy workspace image to ${ws.image}`);
    await rename(partial, ws.image);
  }

  /**
   * A loop device serving the image, by name (`loop7`): `previous` (recorded by an earlier attempt)
   * if it still serves it, else a newly attached one. The caller records it before mounting, so a
   * worker that dies in between leaves a device destroy can still detach. Attaches run one at a
   * time: concurrent `losetup --find` calls were seen to print the same device to two callers.
   */
  async attach(ws: WorkspaceRecord, previous?: string): Promise<string> {
    await this.ensureImage(ws);
    if (previous && (await loopServes(previous, ws.image))) return previous;
    return this.attaching.run('losetup', async () => {
      const loop = path.basename(
        (await tool(['losetup', '--find', '--show', ws.image], `attach ${ws.image} to a loop device`)).trim(),
      );
      if (!(await loopServes(loop, ws.image))) {
        throw new HypervisorError(
          `losetup named /dev/${loop}, which does not serve ${ws.image}`,
          'workspace_unavailable',
        );
      }
      return loop;
    });
  }

  /**
   * Mounts the attached device on /work inside the sandbox's mount namespace, then detaches it:
   * the kernel only marks a device still in use for autoclear, so it goes when the namespace does.
   */
  async mountInSandbox(ws: WorkspaceRecord, loop: string, holderPid: number): Promise<void> {
    const argv = launchArgv({ open: [{ fd: 3, file: `/dev/${loop}`, mode: 'read' }] }, [
      'bash',
      '--norc',
      '--noprofile',
      '-c',
      MOUNT_IN_SANDBOX,
      'mount-workspace',
      loop,
      ws.image,
      String(holderPid),
      SANDBOX_WORK,
    ]);
    const r = await runCommand(argv, { env: { PATH: TOOLS_PATH }, timeoutMs: 60_000 });
    if (r.exitCode !== 0) {
      throw new HypervisorError(
        `could not mount /dev/${loop} on /work in the sandbox: ${(r.stderr || r.stdout).trim()}`,
        'workspace_unavailable',
      );
    }
    await tool(['losetup', '-d', `/dev/${loop}`], `mark /dev/${loop} for autoclear`);
  }

  /** isolation none: mounts the image on the host's work dir, if it is not already. Idempotent. */
  async mountOnHost(ws: WorkspaceRecord, mountPoint: string): Promise<void> {
    await this.ensureImage(ws);
    if (await isMounted(mountPoint)) return;
    await mkdir(mountPoint, { recursive: true });
    await tool(['mount', '-o', 'loop,nosuid,nodev', ws.image, mountPoint], `mount workspace ${ws.image}`);
  }

  /**
   * Unmounts the host mount (mount -o loop set autoclear, so the device follows). A mount still
   * busy after the sandbox's processes are gone is detached lazily, so destroy never hangs.
   */
  async unmountFromHost(mountPoint: string): Promise<void> {
    for (let attempt = 0; await isMounted(mountPoint); attempt++) {
      if (attempt > 20) {
        throw new HypervisorError(
          `workspace ${mountPoint} is still mounted after ${attempt} unmounts`,
          'workspace_busy',
        );
      }
      const r = await runCommand(['umount', ...(attempt >= 10 ? ['-l'] : []), mountPoint], {
        env: { PATH: TOOLS_PATH },
        timeoutMs: 30_000,
      });
      if (r.exitCode !== 0) await new Promise((res) => setTimeout(res, 50));
    }
  }

  /**
   * Waits until the loop device no longer serves the image, detaching it if it still does once
   * the sandbox's processes are gone (a worker died between attach and autoclear). The kernel
   * tears an autoclear device down asynchronously after the last unmount.
   */
  async releaseLoop(ws: WorkspaceRecord, loop: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let detached = false;
    while (await loopServes(loop, ws.image)) {
      if (!detached) {
        await runCommand(['losetup', '-d', `/dev/${loop}`], { env: { PATH: TOOLS_PATH }, timeoutMs: 30_000 });
        detached = true;
      }
      if (Date.now() > deadline) {
        throw new HypervisorError(
          `/dev/${loop} still serves ${ws.image} ${timeoutMs} ms after its sandbox ended`,
          'workspace_busy',
        );
      }
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  /** releaseLoop for every device serving the image: when none was recorded (a worker died right after attaching). */
  async releaseAnyLoop(ws: WorkspaceRecord): Promise<void> {
    if (!(await isFileAsync(ws.image))) return;
    const r = await runCommand(['losetup', '-j', ws.image], { env: { PATH: TOOLS_PATH }, timeoutMs: 30_000 });
    for (const m of r.stdout.matchAll(/^\/dev\/(loop\d+):/gm)) await this.releaseLoop(ws, m[1]!);
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
      [
        'mkfs.ext4',
        '-q',
        '-F',
        '-m',
        '0',
        '-E',
        `root_owner=${SANDBOX_UID}:${SANDBOX_UID},lazy_itable_init=0,lazy_journal_init=0`,
        partial,
      ],
      `make the ${sizeMiB} MiB workspace template`,
    );
    // An empty /work, not one holding lost+found (e2fsck recreates it if it ever needs it).
    await runCommand(['debugfs', '-w', '-R', 'rmdir lost+found', partial], {
      env: { PATH: TOOLS_PATH },
      timeoutMs: 30_000,
    });
    await rename(partial, file);
    return file;
  }
}

/** Whether something is mounted on this host path (in the worker's mount namespace). */
export async function isMounted(mountPoint: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(mountPoint);
  } catch {
    return false;
  }
  return (await readMounts()).some((m) => m.mountPoint === real);
}

/** Major number of loop block devices (LOOP_MAJOR). */
const LOOP_MAJOR = '7';

/**
 * Whether the sandbox whose holder is `pid` sees its workspace on /work: the topmost mount there
 * is the root of an ext4 filesystem on a loop device. (The bind of the host directory beneath it
 * may be ext4 too, but it is a subdirectory of the host's filesystem.)
 */
export async function workspaceMountedIn(pid: number): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return false; // the holder is gone
  }
  const top = parseMountinfo(text)
    .filter((m) => m.mountPoint === SANDBOX_WORK)
    .at(-1);
  return top !== undefined && top.fsType === 'ext4' && top.root === '/' && top.device.split(':')[0] === LOOP_MAJOR;
}

/** Whether /dev/<loop> is attached to `image` (the kernel appends " (deleted)" once it is unlinked). */
async function loopServes(loop: string, image: string): Promise<boolean> {
  const backing = await readFile(`/sys/block/${loop}/loop/backing_file`, 'utf8').catch(() => '');
  return backing.trim() === image || backing.trim() === `${image} (deleted)`;
}

async function tool(argv: string[], what: string): Promise<string> {
  const r = await runCommand(argv, { env: { PATH: TOOLS_PATH }, timeoutMs: 120_000 });
  if (r.exitCode !== 0) {
    throw new HypervisorError(
      `could not ${what}: ${argv[0]} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim()}`,
      'workspace_unavailable',
    );
  }
  return r.stdout;
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
