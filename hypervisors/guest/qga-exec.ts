// guest-exec and guest-exec-status as qemu-ga speaks them, for the drivers that talk to it directly:
// qemu (its socket) and libvirt (virsh qemu-agent-command). Proxmox reaches the same agent through
// PVE, which changes the shapes (proxmox/guest-agent.ts).
import type { GuestExecStatus } from './exec';

/** guest-exec-status's reply. */
export interface QgaExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

/** guest-exec's arguments. qemu-ga replaces (not extends) its own environment with `env`. */
export function guestExecArguments(argv: string[], env?: Record<string, string>): Record<string, unknown> {
  const [path, ...arg] = argv;
  const envList = env ? Object.entries(env).map(([k, v]) => `${k}=${v}`) : undefined;
  return { path, arg, 'capture-output': true, ...(envList ? { env: envList } : {}) };
}

export function decodeExecStatus(reply: QgaExecStatus): GuestExecStatus {
  return {
    exited: reply.exited,
    exitcode: reply.exitcode,
    signal: reply.signal,
    stdout: Buffer.from(reply['out-data'] ?? '', 'base64'),
    stderr: Buffer.from(reply['err-data'] ?? '', 'base64'),
    stdoutTruncated: reply['out-truncated'],
    stderrTruncated: reply['err-truncated'],
  };
}
