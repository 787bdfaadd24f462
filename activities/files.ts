// File operations in a sandbox, for the workflow's files update. The bytes never enter the
// workflow: an upload's are read here from its transfer's chunks, a download's written there.
import type { FileOp, FileOpResult } from '../workflows/types';
import { BadSpecError } from '../hypervisors/errors';
import { confinePath } from '../hypervisors/guest/sandbox-paths';
import { TooLargeError } from '../hypervisors/guest/capped-sink';
import {
  MAX_TRANSFER_BYTES,
  readTransferChunks,
  TooLargeError as TransferTooLargeError,
  TransferIncompleteError,
  TransferWriter,
} from '../registry/transfers';
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
              // The layer checks size and sha256 (what the API counted and hashed as it stored them)
              // before the file replaces anything: a transfer cut short never becomes the file.
              const source = transferSource(readTransferChunks(pool, op.transferId, op.size));
              const expect = { size: op.size, sha256: op.sha256 };
              const written = await files.writeFile(id, op.path, source, { mode: op.mode, expect }, opContext());
              return { op: 'write', path: written.path, size: written.size, sha256: op.sha256 };
            }
            case 'read': {
              // A retried read starts the transfer over. The layer stops past the cap (too_large);
              // the writer's own cap is the last guard of PostgreSQL.
              const out = await TransferWriter.restart(pool, op.transferId, MAX_TRANSFER_BYTES);
              const sink = (chunk: Buffer) => out.write(chunk).catch(tooLargeAsPermanent);
              const read = await files.readFile(id, op.path, sink, opContext(), { maxBytes: MAX_TRANSFER_BYTES });
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

/** An upload's chunks; a transfer deleted or cut short mid-copy cannot come back: a permanent failure. */
async function* transferSource(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* chunks;
  } catch (err) {
    if (err instanceof TransferIncompleteError) throw new BadSpecError(err.message);
    throw err;
  }
}

function tooLargeAsPermanent(err: unknown): never {
  if (err instanceof TransferTooLargeError) throw new TooLargeError(`the file read is ${err.message}`);
  throw err;
}
