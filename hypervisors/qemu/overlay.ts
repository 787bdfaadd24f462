// The sandbox's disk: a qcow2 overlay backed by the guest image's rootfs.
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { HypervisorError } from '../errors';
import { tail } from '../common/file-tail';
import type { SandboxPaths, VmRecord } from './state';
import { runToLog } from '../common/run-to-log';
import type { OpContext } from '../types';

export async function createOverlay(p: SandboxPaths, rec: VmRecord, ctx: OpContext): Promise<void> {
  // Under a temporary name first: a half-made overlay must never pass for a good one.
  const tmp = `${p.overlay}.tmp-${randomBytes(4).toString('hex')}`;
  ctx.progress?.(`sandbox ${rec.id}: creating overlay on ${rec.image.rootfs}`);
  const code = await runToLog(
    'qemu-img',
    ['create', '-q', '-f', 'qcow2', '-b', rec.image.rootfs, '-F', 'qcow2', tmp],
    p.log,
  );
  if (code !== 0) {
    await rm(tmp, { force: true });
    throw new HypervisorError(
      `sandbox ${rec.id}: qemu-img create failed (exit ${code}): ${await tail(p.log)}`,
      'overlay_failed',
    );
  }
  await rename(tmp, p.overlay);
}
