// Where the guest image built by scripts/build-guest-image.sh lives. Shared by the qemu and libvirt drivers.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadSpecError } from '../errors';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** The base disk, symlink resolved: overlays must back onto rootfs-<hash>.qcow2, which a rebuild never replaces. */
  rootfs: string;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function defaultGuestImageDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.HOURGLASS_GUEST_IMAGE_DIR || join(REPO_ROOT, '.images', 'guest'));
}

/** Absolute paths of the image in `dir` (default: $HOURGLASS_GUEST_IMAGE_DIR or <repo>/.images/guest). */
export function resolveGuestImage(dir?: string): GuestImage {
  const imageDir = dir ? resolve(dir) : defaultGuestImageDir();
  const files = { kernel: 'vmlinuz', initrd: 'initrd.img', rootfs: 'rootfs.qcow2', manifest: 'manifest.json' };
  const missing = Object.values(files).filter((f) => !existsSync(join(imageDir, f)));
  if (missing.length > 0) {
    throw new BadSpecError(
      `guest image incomplete in ${imageDir} (missing ${missing.join(', ')}): run \`npm run image:build\``,
    );
  }
  return {
    kernel: join(imageDir, files.kernel),
    initrd: join(imageDir, files.initrd),
    rootfs: realpathSync(join(imageDir, files.rootfs)),
  };
}
