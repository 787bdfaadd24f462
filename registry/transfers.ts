// Files on their way into or out of a sandbox (migration 007): the bytes in 1 MiB chunks, written
// by one side (the API for an upload, the worker for a download) and read in order by the other.
import { createHash } from 'node:crypto';
import type pg from 'pg';

/** Bytes per chunk row: large enough for few round trips, small enough to hold a few in memory. */
export const TRANSFER_CHUNK_BYTES = 1024 * 1024;

/** The most one transfer carries, either way (100 MiB): an upload's body, a download's file or tar. */
export const MAX_TRANSFER_BYTES = 100 * 1024 * 1024;

export type TransferDirection = 'upload' | 'download';

export interface TransferRow {
  id: string;
  sandboxId: string;
  owner: string;
  direction: TransferDirection;
  path: string;
  kind: 'file' | 'directory' | null;
  size: number | null;
  sha256: string | null;
  finishedAt: string | null;
}

export async function createTransfer(
  pool: pg.Pool,
  t: { id: string; sandboxId: string; owner: string; direction: TransferDirection; path: string },
): Promise<void> {
  await pool.query(`INSERT INTO transfers (id, sandbox_id, owner, direction, path) VALUES ($1,$2,$3,$4,$5)`, [
    t.id,
    t.sandboxId,
    t.owner,
    t.direction,
    t.path,
  ]);
}

export async function getTransfer(pool: pg.Pool, id: string): Promise<TransferRow | null> {
  const { rows } = await pool.query<TransferRow>(
    `SELECT id, sandbox_id AS "sandboxId", owner, direction, path, kind, size::float8 AS size, sha256,
            finished_at AS "finishedAt"
       FROM transfers WHERE id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

export async function finishTransfer(
  pool: pg.Pool,
  id: string,
  done: { size: number; sha256: string; kind?: 'file' | 'directory' },
): Promise<void> {
  await pool.query(`UPDATE transfers SET size = $2, sha256 = $3, kind = $4, finished_at = now() WHERE id = $1`, [
    id,
    done.size,
    done.sha256,
    done.kind ?? 'file',
  ]);
}

/** The transfer and its chunks. */
export async function deleteTransfer(pool: pg.Pool, id: string): Promise<void> {
  await pool.query(`DELETE FROM transfers WHERE id = $1`, [id]);
}

/** Transfers a crash left behind (an API or worker gone mid-way). */
export async function deleteStaleTransfers(pool: pg.Pool, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await pool.query(`DELETE FROM transfers WHERE created_at < now() - make_interval(secs => $1)`, [
    olderThanSeconds,
  ]);
  return rowCount ?? 0;
}

/**
 * Writes bytes into a transfer's chunks in order, holding at most one chunk in memory; counts and
 * hashes them. `maxBytes`: past it the write is refused (TooLargeError) and nothing more stored.
 */
export class TransferWriter {
  private readonly hash = createHash('sha256');
  private size = 0;
  private seq = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly id: string,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** A writer for a transfer written before (a retried download): its old chunks go first. */
  static async restart(pool: pg.Pool, id: string, maxBytes: number): Promise<TransferWriter> {
    await pool.query(`DELETE FROM transfer_chunks WHERE transfer_id = $1`, [id]);
    return new TransferWriter(pool, id, maxBytes);
  }

  async write(piece: Buffer | Uint8Array | string): Promise<void> {
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece);
    this.size += bytes.length;
    if (this.size > this.maxBytes) throw new TooLargeError(this.maxBytes);
    this.hash.update(bytes);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    await this.flush(false);
  }

  /** Writes what is left; with `kind`, records the transfer as finished (a download's end). */
  async finish(kind?: 'file' | 'directory'): Promise<{ size: number; sha256: string }> {
    await this.flush(true);
    const done = { size: this.size, sha256: this.hash.digest('hex') };
    if (kind) await finishTransfer(this.pool, this.id, { ...done, kind });
    return done;
  }

  private async flush(all: boolean): Promise<void> {
    while (this.pendingBytes >= TRANSFER_CHUNK_BYTES || (all && this.pendingBytes > 0)) {
      const joined = Buffer.concat(this.pending);
      const chunk = joined.subarray(0, TRANSFER_CHUNK_BYTES);
      const rest = joined.subarray(chunk.length);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.seq += 1;
      await this.pool.query(`INSERT INTO transfer_chunks (transfer_id, seq, data) VALUES ($1,$2,$3)`, [
        this.id,
        this.seq,
        chunk,
      ]);
    }
  }
}

/** Writes a whole byte stream into a transfer (an upload's body). */
export async function writeTransferChunks(
  pool: pg.Pool,
  id: string,
  source: AsyncIterable<Buffer | Uint8Array | string>,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<{ size: number; sha256: string }> {
  const writer = new TransferWriter(pool, id, maxBytes);
  for await (const piece of source) await writer.write(piece);
  return writer.finish();
}

/**
 * A transfer's bytes in order, a chunk per query. With `expectedSize` (an upload's, counted as it
 * was stored) the end is that size: a chunk missing before it (the transfer deleted mid-copy) or
 * bytes past it are TransferIncompleteError, never a quiet end of the stream.
 */
export async function* readTransferChunks(pool: pg.Pool, id: string, expectedSize?: number): AsyncGenerator<Buffer> {
  let read = 0;
  for (let seq = 1; expectedSize === undefined || read < expectedSize; seq++) {
    const { rows } = await pool.query<{ data: Buffer }>(
      `SELECT data FROM transfer_chunks WHERE transfer_id = $1 AND seq = $2`,
      [id, seq],
    );
    const data = rows[0]?.data;
    if (!data && expectedSize === undefined) return;
    if (!data) throw new TransferIncompleteError(id, `chunk ${seq} is missing after ${read} of ${expectedSize} bytes`);
    read += data.length;
    if (expectedSize !== undefined && read > expectedSize) {
      throw new TransferIncompleteError(id, `it holds more than the ${expectedSize} bytes stored`);
    }
    yield data;
  }
}

/** A transfer's chunks are not the bytes that were stored (deleted or changed while being read). */
export class TransferIncompleteError extends Error {
  constructor(
    readonly transferId: string,
    detail: string,
  ) {
    super(`transfer ${transferId} is incomplete: ${detail}`);
    this.name = 'TransferIncompleteError';
  }
}

export class TooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`more than ${maxBytes} bytes (the most one transfer may carry)`);
    this.name = 'TooLargeError';
  }
}
