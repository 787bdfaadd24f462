// A libvirt sandbox's files in the driver's directory: its qcow2 overlay on the guest image and
// its console log. Only files named after the sandbox are ever removed.
import { randomBytes } from 'node:crypto';
import { link, readFile, realpath, rm } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { errorText } from '../common/error-text';
import { runTool } from '../common/run-command';
import { BadSpecError, HypervisorError } from '../errors';
import { resolveGuestImage } from '../guest/image';
import type { OpContext, SandboxSpec } from '../types';
import type { SandboxMarker } from './domain-xml';

export class SandboxFiles {
  constructor(
    readonly dir: string,
    /** Directory of the guest image; undefined = resolveGuestImage's default. */
    private readonly imageDir: string | undefined,
  ) {}

  overlay(id: string): string {
    return join(this.dir, `${id}.qcow2`);
  }

  consoleLog(id: string): string {
    return join(this.dir, `${id}.console.log`);
  }

  /**
   * The files a sandbox's marker names (a worker with another state dir still cleans up), as long
   * as they are named after it; else where this driver would put them.
   */
  marked(id: string, marker: SandboxMarker | undefined): { overlay: string; consoleLog: string } {
    return {
      overlay: ownFile(marker?.overlay, `${id}.qcow2`) ?? this.overlay(id),
      consoleLog: ownFile(marker?.consoleLog, `${id}.console.log`) ?? this.consoleLog(id),
    };
  }

  async guestImage(spec: SandboxSpec): Promise<{ kernel: string; initrd: string; rootfs: string }> {
    if (spec.template !== undefined && spec.template !== 'default') {
      throw new BadSpecError(`sandbox ${spec.id}: unknown libvirt template ${spec.template} (only "default")`);
    }
    try {
      const image = await resolveGuestImage(this.imageDir);
      // rootfs.qcow2 is a symlink to rootfs-<hash>.qcow2: back onto the real file, so a rebuilt
      // image does not change the disk under a live sandbox.
      return { kernel: resolve(image.kernel), initrd: resolve(image.initrd), rootfs: await realpath(image.rootfs) };
    } catch (err) {
      throw new BadSpecError(`sandbox ${spec.id}: guest image unavailable (npm run image:build): ${errorText(err)}`);
    }
  }

  async createOverlay(id: string, baseImage: string, ctx?: OpContext): Promise<void> {
    // Write under a temporary name, then link: a half-written overlay is never taken for a good one,
    // and a racing create of the same id keeps the overlay that won (link fails with EEXIST).
    const overlay = this.overlay(id);
    const tmp = `${overlay}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await runTool(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', baseImage, '-F', 'qcow2', tmp], {
        signal: ctx?.signal,
        timeoutMs: 60_000,
      });
      await link(tmp, overlay).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    } catch (err) {
      throw new HypervisorError(`sandbox ${id}: qemu-img create failed: ${errorText(err)}`, 'libvirt_error');
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** `; console: …` with a kernel panic's cause and the last lines, for a boot failure's message. */
  async consoleTail(id: string): Promise<string> {
    try {
      const lines = (await readFile(this.consoleLog(id), 'utf8')).trim().split('\n');
      // A panic's cause is above its stack trace: name it, then the last lines.
      const panic = lines.find((l) => /Kernel panic/.test(l));
      const tail = [...(panic ? [panic.trim()] : []), ...lines.slice(-3).map((l) => l.trim())].filter(Boolean);
      return tail.length ? `; console: ${tail.join(' | ')}` : '';
    } catch {
      return '';
    }
  }
}

function ownFile(path: string | undefined, expectedName: string): string | undefined {
  return path && isAbsolute(path) && basename(path) === expectedName ? path : undefined;
}
