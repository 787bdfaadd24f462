// A qemu sandbox's FileTransport (guest/file-transport.ts): bytes through qemu-ga's guest-file-*
// commands on the sandbox's shared agent connection, commands through the driver's exec.
import type { FileTransport } from '../guest/file-transport';
import { QgaFiles } from '../guest/qga-files';
import { VM_GUEST_HOME } from '../guest/contract';
import type { OpContext } from '../types';
import { qgaCommand, type QgaClient } from './qga';

/**
 * Bytes per guest-file-read/write: one JSON line of 4/3 of it on the socket. qemu-ga takes up to
 * 48 MiB a read and its JSON parser 64 MiB a message; 1 MiB keeps each request short (a
 * concurrent exec on the same connection waits behind it) at near-full speed (see the test's figures).
 */
export const QEMU_FILE_CHUNK_BYTES = 1024 * 1024;

export function qemuFileTransport(
  id: string,
  useAgent: <T>(fn: (qga: QgaClient) => Promise<T>) => Promise<T>,
  run: FileTransport['run'],
): FileTransport {
  const files = (qga: QgaClient) => new QgaFiles(id, qgaCommand(qga), QEMU_FILE_CHUNK_BYTES);
  return {
    id,
    workspace: VM_GUEST_HOME,
    run,
    writeBytes: (path, data, ctx?: OpContext) => useAgent((qga) => files(qga).writeFile(path, data, ctx?.signal)),
    readBytes: (path, sink, ctx?: OpContext) => useAgent((qga) => files(qga).readFile(path, sink, ctx?.signal)),
  };
}
