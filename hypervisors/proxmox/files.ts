// A VM's file bytes through PVE's agent API (docs/proxmox-api.md §8a). PVE offers only:
// - agent/file-write: one whole file per call, opened "wb" (truncating), content ≤ 61,440
//   characters; with encode=0 the content is our own base64, so ≤ 46,080 bytes a call;
// - agent/file-read: the file from its start, at most 16 MiB, each byte as one character of the
//   JSON string (U+0000..U+00FF), `truncated` when it stopped at the cap.
// So a larger upload goes as pieces written beside the target and appended to it by a command in
// the guest; a larger download reads 16 MiB slices that dd(1) cuts into temporary files.
import { randomBytes } from 'node:crypto';
import { HypervisorError, PathNotFoundError } from '../errors';
import { rechunk } from '../guest/qga-files';
import type { ExecResult } from '../types';
import { PveApiError, type PveClient } from './client';

/** file-write's content maxLength (61,440) holds this many bytes as base64. */
export const PVE_WRITE_BYTES = 46_080;
/** agent/file-read's cap ($MAX_READ_SIZE in PVE's Agent.pm). */
export const PVE_READ_MAX_BYTES = 16 * 1024 * 1024;
/** Pieces appended per guest command (its argv stays short). */
const PIECES_PER_APPEND = 32;

const NOT_FOUND = /No such file or directory/;

export class PveFiles {
  constructor(
    private readonly id: string,
    private readonly client: PveClient,
    private readonly vm: { node: string; vmid: number },
    /** A short command in the guest, through the driver's exec. */
    private readonly run: (argv: string[]) => Promise<ExecResult>,
  ) {}

  /** One file-write: creates or truncates `path` and writes ≤ PVE_WRITE_BYTES. */
  async write(path: string, bytes: Buffer): Promise<void> {
    // JSON body: form encoding would grow base64's + and / threefold, past pveproxy's 64 KiB.
    await this.call(path, () =>
      this.client.post(
        this.path('file-write'),
        { file: path, content: bytes.toString('base64'), encode: 0 },
        { json: true },
      ),
    );
  }

  /** One file-read: up to PVE_READ_MAX_BYTES from the start of `path`. */
  async read(path: string): Promise<{ data: Buffer; truncated: boolean }> {
    const answer = await this.call(path, () =>
      this.client.get<{ content: string; truncated?: number | boolean }>(this.path('file-read'), { file: path }),
    );
    return { data: Buffer.from(answer.content, 'latin1'), truncated: Number(answer.truncated ?? 0) === 1 };
  }

  async writeFile(path: string, data: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<number> {
    const tag = randomBytes(6).toString('hex');
    let written = 0;
    let pieces: string[] = [];
    const append = async () => {
      if (pieces.length === 0) return;
      await this.runOk(['/bin/sh', '-c', 'cat "$@" >> "$0" && rm -f "$@"', path, ...pieces], 'append');
      pieces = [];
    };
    try {
      for await (const piece of rechunk(data, PVE_WRITE_BYTES)) {
        signal?.throwIfAborted();
        if (written === 0) {
          await this.write(path, piece);
        } else {
          const name = `${path}.hg-${tag}-${pieces.length}`;
          await this.write(name, piece);
          pieces.push(name);
          if (pieces.length >= PIECES_PER_APPEND) await append();
        }
        written += piece.length;
      }
      if (written === 0) await this.write(path, Buffer.alloc(0));
      await append();
    } catch (err) {
      if (pieces.length > 0) await this.run(['/bin/rm', '-f', ...pieces]).catch(() => undefined);
      throw err;
    }
    return written;
  }

  async readFile(path: string, sink: (chunk: Buffer) => Promise<void>, signal?: AbortSignal): Promise<number> {
    let { data, truncated } = await this.read(path);
    let total = data.length;
    if (data.length > 0) await sink(data);
    const slice = `/tmp/.hourglass-read-${randomBytes(8).toString('hex')}`;
    try {
      for (let n = 1; truncated; n++) {
        signal?.throwIfAborted();
        const mib = PVE_READ_MAX_BYTES / (1024 * 1024);
        const cut = `dd if="$0" of="$1" bs=1048576 skip=$2 count=${mib} 2>/dev/null`;
        await this.runOk(['/bin/sh', '-c', cut, path, slice, String(n * mib)], 'slice');
        ({ data, truncated } = await this.read(slice));
        total += data.length;
        if (data.length > 0) await sink(data);
      }
    } finally {
      if (total > PVE_READ_MAX_BYTES) await this.run(['/bin/rm', '-f', slice]).catch(() => undefined);
    }
    return total;
  }

  private async runOk(argv: string[], what: string): Promise<void> {
    const r = await this.run(argv);
    if (r.exitCode !== 0) {
      throw new HypervisorError(`sandbox ${this.id}: ${what} in the guest failed: ${r.stderr.trim()}`, 'agent_error');
    }
  }

  private async call<T>(path: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof PveApiError && NOT_FOUND.test(err.pveMessage)) throw new PathNotFoundError(this.id, path);
      throw err;
    }
  }

  private path(call: 'file-read' | 'file-write'): string {
    return `/nodes/${this.vm.node}/qemu/${this.vm.vmid}/agent/${call}`;
  }
}
