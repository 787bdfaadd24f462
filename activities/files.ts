// File operations in a sandbox, for the workflow's files update. The bytes never enter the
// workflow: an upload's are read here from its transfer's chunks, a download's written there.
import { createHash } from 'node:crypto';
import type { FileOp, FileOpResult } from '../workflows/types';
import { BadSpecError } from '../hypervisors/errors';
import { confinePath } from '../hypervisors/guest/sandbox-paths';
import { readTransferChunks, TransferWriter } from '../registry/transfers';
import type { ActivityDeps } from './index';
import { hypervisor, opContext, permanentAware, whileAlive } from './driver-call';

export function createFileActivities({ pool, hypervisors }: Pick<ActivityDeps, 'pool' | 'hypervisors'>) {
  return {
    async fileOp(req: { id: string; driver: string; op: FileOp }): Promise<FileOpResult> {
      const files = hypervisor(hypervisors, req.driver).fileSystem;
      const { id, op } = req;
      return whileAlive(() =>
        permanentAware(async (): Promise<FileOpResult> => {
          switch (op.op) {
            case 'write': {
              const hash = createHash('sha256');
              const source = hashed(readTransferChunks(pool, op.transferId), hash);
              const written = await files.writeFile(id, op.path, source, { mode: op.mode }, opContext());
              const sha256 = hash.digest('hex');
              // The API counted and hashed the bytes it stored: anything else reached the sandbox is wrong.
              if (written.size !== op.size || sha256 !== op.sha256) {
                throw new BadSpecError(
                  `sandbox ${id}: upload ${op.transferId} is not what was sent ` +
                    `(${written.size} bytes, sha256 ${sha256}; expected ${op.size}, ${op.sha256})`,
                );
              }
              return { op: 'write', path: written.path, size: written.size, sha256 };
            }
            case 'read': {
              // A retried read starts the transfer over.
              const out = await TransferWriter.restart(pool, op.transferId);
              const read = await files.readFile(id, op.path, (chunk) => out.write(chunk), opContext());
              const { size, sha256 } = await out.finish(read.kind);
              return { op: 'read', path: read.path, kind: read.kind, size, sha256 };
            }
            case 'list': {
              const listed = await files.listFiles(id, op.path, { limit: op.limit }, opContext());
              return { op: 'list', ...listed };
            }
            case 'remove': {
              const { existed } = await files.removeFile(id, op.path, { recursive: op.recursive }, opContext());
              // Absolute, as every other operation answers it (checked already by removeFile).
              const path = confinePath(id, await files.workspaceOf(id), op.path);
              return { op: 'remove', path, existed };
            }
            case 'mkdir': {
              const made = await files.makeDirectory(id, op.path, { parents: op.parents }, opContext());
              return { op: 'mkdir', path: made.path };
            }
          }
        }),
      );
    },
  };
}

async function* hashed(source: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}
