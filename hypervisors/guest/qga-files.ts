// qemu-ga's file commands (guest-file-open/read/write/seek/close) as one small API, for the drivers
// that speak to qemu-ga directly: qemu (its socket) and libvirt (virsh qemu-agent-command). They
// differ only in how one command travels (QgaCommand) and how big a chunk may be.
import { PathNotFoundError } from '../errors';
import type { GuestExecStatus } from './exec';
import { decodeExecStatus, type QgaExecStatus } from './qga-exec';
import type { OutputFiles, OutputPoll } from './stream-exec';

/** Sends one qemu-ga command and resolves to its "return" member (rejects with its error). */
export type QgaCommand = (execute: string, args?: Record<string, unknown>) => Promise<unknown>;

/** Several commands in order, their "return" members in order (virsh: one process for all). */
export type QgaBatch = (commands: { execute: string; arguments?: Record<string, unknown> }[]) => Promise<unknown[]>;

const NOT_FOUND = /No such file or directory/;

export class QgaFiles {
  constructor(
    private readonly id: string,
    private readonly command: QgaCommand,
    /** Bytes per guest-file-read / guest-file-write (base64 makes the message 4/3 of it). */
    readonly chunkBytes: number,
    private readonly batch: QgaBatch = async (commands) => {
      const answers: unknown[] = [];
      for (const c of commands) answers.push(await command(c.execute, c.arguments));
      return answers;
    },
  ) {}

  async open(path: string, mode: 'r' | 'w'): Promise<number> {
    try {
      return (await this.command('guest-file-open', { path, mode })) as number;
    } catch (err) {
      if (err instanceof Error && NOT_FOUND.test(err.message)) throw new PathNotFoundError(this.id, path);
      throw err;
    }
  }

  async read(handle: number, count: number): Promise<{ data: Buffer; eof: boolean }> {
    const r = (await this.command('guest-file-read', { handle, count })) as { 'buf-b64': string; eof: boolean };
    return { data: Buffer.from(r['buf-b64'], 'base64'), eof: r.eof };
  }

  async write(handle: number, data: Buffer): Promise<void> {
    const r = (await this.command('guest-file-write', { handle, 'buf-b64': data.toString('base64') })) as {
      count: number;
    };
    // qemu-ga writes with one fwrite: a short count means the guest's disk refused the rest.
    if (r.count !== data.length) throw new Error(`guest-file-write wrote ${r.count} of ${data.length} bytes`);
  }

  async seek(handle: number, offset: number): Promise<void> {
    await this.command('guest-file-seek', { handle, offset, whence: 'set' });
  }

  async close(handle: number): Promise<void> {
    await this.command('guest-file-close', { handle });
  }

  /** Creates or truncates `path` and writes `data` to it in chunkBytes pieces. */
  async writeFile(path: string, data: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<number> {
    const handle = await this.open(path, 'w');
    let written = 0;
    try {
      for await (const piece of rechunk(data, this.chunkBytes)) {
        signal?.throwIfAborted();
        await this.write(handle, piece);
        written += piece.length;
      }
    } finally {
      await this.close(handle).catch(() => undefined);
    }
    return written;
  }

  /** Hands the bytes of `path` to `sink` in chunkBytes pieces. */
  async readFile(path: string, sink: (chunk: Buffer) => Promise<void>, signal?: AbortSignal): Promise<number> {
    const handle = await this.open(path, 'r');
    let read = 0;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const { data, eof } = await this.read(handle, this.chunkBytes);
        if (data.length > 0) {
          read += data.length;
          await sink(data);
        }
        if (eof || data.length === 0) return read;
      }
    } finally {
      await this.close(handle).catch(() => undefined);
    }
  }

  /**
   * A streamed command's output files, read from kept handles seeked before every read: glibc's
   * fread keeps EOF once it has hit it, and a seek clears it. Each poll is one batch (status,
   * seek, read, seek, read), two when the command exited before its files could be opened. A
   * file is opened once it exists (the command's shell makes it).
   */
  outputs(stdoutPath: string, stderrPath: string): OutputFiles {
    const paths = [stdoutPath, stderrPath];
    const handles: (number | undefined)[] = [undefined, undefined];
    const pollOnce = async (pid: number | null, offsets: [number, number], max: number): Promise<OutputPoll> => {
      for (const i of [0, 1]) {
        if (handles[i] !== undefined) continue;
        handles[i] = await this.open(paths[i]!, 'r').catch((err: unknown) => {
          if (err instanceof PathNotFoundError) return undefined;
          throw err;
        });
      }
      const count = Math.min(max, this.chunkBytes);
      const commands = [
        ...(pid !== null ? [{ execute: 'guest-exec-status', arguments: { pid } }] : []),
        ...[0, 1].flatMap((i) => {
          const handle = handles[i];
          if (handle === undefined) return [];
          return [
            { execute: 'guest-file-seek', arguments: { handle, offset: offsets[i], whence: 'set' } },
            { execute: 'guest-file-read', arguments: { handle, count } },
          ];
        }),
      ];
      const answers = await this.batch(commands);
      const status: GuestExecStatus | undefined =
        pid !== null ? decodeExecStatus(answers.shift() as QgaExecStatus) : undefined;
      const chunks = [0, 1].map((i) => {
        if (handles[i] === undefined) return Buffer.alloc(0);
        answers.shift(); // the seek's
        return Buffer.from((answers.shift() as { 'buf-b64': string })['buf-b64'], 'base64');
      });
      return { status, chunks: chunks as [Buffer, Buffer] };
    };
    return {
      poll: async (pid, offsets, max) => {
        const first = await pollOnce(pid, offsets, max);
        // Files are opened before the status is asked: a quick command may make its file, write and
        // exit in between. Exited with a file not open: open and read again (from the same offsets).
        if (!first.status?.exited || !handles.includes(undefined)) return first;
        return { status: first.status, chunks: (await pollOnce(null, offsets, max)).chunks };
      },
      close: async () => {
        for (const h of handles) if (h !== undefined) await this.close(h).catch(() => undefined);
      },
    };
  }
}

/** Re-cuts a byte stream into pieces of exactly `size` bytes (the last one shorter). */
export async function* rechunk(data: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of data) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= size) {
      const all = Buffer.concat(pending);
      yield all.subarray(0, size);
      pending = [all.subarray(size)];
      pendingBytes = all.length - size;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}
