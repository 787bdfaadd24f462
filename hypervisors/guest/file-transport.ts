// What a driver gives the common file layer (guest/sandbox-file-system.ts) so that every driver's
// files behave alike: a way to run small commands in the sandbox, and to move bytes in and out of
// one already-confined path. Everything runs inside the sandbox (its user and namespaces, or its guest).
import type { ExecResult, OpContext } from '../types';

export interface FileTransport {
  /** The sandbox's id (for error messages). */
  readonly id: string;
  /** The directory paths are confined to, as the sandbox sees it: '/work' or '/root'. */
  readonly workspace: string;
  /** A short command in the sandbox, through the driver's exec (its contract holds). */
  run(command: string[], opts?: { stdin?: Buffer; timeoutSeconds?: number }, ctx?: OpContext): Promise<ExecResult>;
  /** Writes `data` to `path` (absolute, confined; created or truncated). Resolves to the bytes written. */
  writeBytes(path: string, data: AsyncIterable<Buffer>, ctx?: OpContext): Promise<number>;
  /** Hands the bytes of the file at `path` (absolute, confined) to `sink` in order; resolves to their count. */
  readBytes(path: string, sink: (chunk: Buffer) => Promise<void>, ctx?: OpContext): Promise<number>;
  /**
   * Optional: streams a command's stdout to `sink` (a tar of a directory) without a temporary file.
   * Drivers whose agent only returns output at exit leave it out; the layer then goes through a
   * temporary file in the sandbox.
   */
  streamOutput?(
    command: string[],
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
  ): Promise<{ exitCode: number; stderr: string; size: number }>;
}
