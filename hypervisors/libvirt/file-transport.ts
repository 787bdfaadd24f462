// A libvirt sandbox's FileTransport (guest/file-transport.ts): bytes through qemu-ga's
// guest-file-* commands over `virsh qemu-agent-command`, commands through the driver's exec.
import type { FileTransport } from '../guest/file-transport';
import { VM_GUEST_HOME } from '../guest/contract';
import type { OpContext } from '../types';
import { virshQgaFiles } from './guest-agent';
import type { Virsh } from './virsh';

export function libvirtFileTransport(
  virsh: Virsh,
  id: string,
  domainState: () => Promise<string>,
  run: FileTransport['run'],
): FileTransport {
  const files = virshQgaFiles(virsh, id, domainState);
  return {
    id,
    workspace: VM_GUEST_HOME,
    run,
    writeBytes: (path, data, ctx?: OpContext) => files.writeFile(path, data, ctx?.signal),
    readBytes: (path, sink, ctx?: OpContext) => files.readFile(path, sink, ctx?.signal),
  };
}
