// One data-plane operation at a time through the typed client, timed as the caller sees it: a
// streamed exec checked for completeness and order, a file upload, a download checked by sha256.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { HourglassApiError, type HourglassClient } from '../../client/index';
import type { ApiResult, Failures } from './api';
import { seededBytes } from './seeded-bytes';

/** A client error as the bench's failure counts want it ("409 invalid_state", "network: …"). */
export function addFailure(failures: Failures, step: string, err: unknown): void {
  if (err instanceof HourglassApiError && err.status > 0) {
    const res: ApiResult = { status: err.status, body: { error: { code: err.code, message: err.message } }, ms: 0 };
    failures.add(step, res);
  } else {
    failures.add(step, err instanceof Error ? err : new Error(String(err)));
  }
}

/** What `seq 1 <lines>` prints. */
export function seqOutput(lines: number): Buffer {
  let text = '';
  for (let i = 1; i <= lines; i++) text += `${i}\n`;
  return Buffer.from(text);
}

export interface StreamedRun {
  sandboxId: string;
  /** When it was posted and when its first stdout event came, epoch ms (to set beside server times). */
  postedAt: number;
  firstByteAt: number;
  /** POST → the first stdout event, ms. */
  firstByteMs: number;
  /** POST → the exit event, ms. */
  exitMs: number;
  exitCode: number;
  bytes: number;
  /** The stdout received is byte for byte what was expected. */
  complete: boolean;
  /** Every chunk's seq above the one before. */
  ordered: boolean;
}

/** Streams `command`, gathering its stdout; a terminal `error` event or a missing exit throws. */
export async function streamedRun(
  client: HourglassClient,
  id: string,
  command: string[],
  expected: Buffer,
  timeoutMs: number,
): Promise<StreamedRun> {
  const postedAt = Date.now();
  const started = performance.now();
  let firstByteMs = NaN;
  let lastSeq = 0;
  let ordered = true;
  const chunks: Buffer[] = [];
  for await (const ev of client.execStream(id, { command }, { signal: AbortSignal.timeout(timeoutMs) })) {
    if (ev.type === 'stdout' || ev.type === 'stderr') {
      if (ev.seq <= lastSeq) ordered = false;
      lastSeq = ev.seq;
      if (ev.type === 'stderr') continue;
      if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - started;
      chunks.push(ev.data);
    } else if (ev.type === 'exit') {
      const out = Buffer.concat(chunks);
      return {
        sandboxId: id,
        postedAt,
        firstByteAt: postedAt + firstByteMs,
        firstByteMs,
        exitMs: performance.now() - started,
        exitCode: ev.exitCode,
        bytes: out.length,
        complete: out.equals(expected),
        ordered,
      };
    } else if (ev.type === 'error') {
      throw new HourglassApiError(0, ev.error.code, `error event: ${ev.error.message}`, ev.error.details);
    }
  }
  throw new Error('the stream ended without an exit or error event');
}

export interface Upload {
  ms: number;
  /** The API's size and sha256 are those of the bytes sent. */
  same: boolean;
  sha256: string;
}

/** PUTs `size` seeded bytes (streamed, 1 MiB chunks) to `path`. */
export async function upload(
  client: HourglassClient,
  id: string,
  path: string,
  seed: string,
  size: number,
): Promise<Upload> {
  const source = seededBytes(seed, size);
  const started = performance.now();
  const res = await client.writeFile(id, path, Readable.from(source.chunks), { mode: 0o644 });
  const ms = performance.now() - started;
  const sha256 = source.sha256();
  return { ms, same: res.size === size && res.sha256 === sha256, sha256 };
}

export interface Download {
  /** GET → the answer's headers (the worker has copied the whole file into chunks by then). */
  firstByteMs: number;
  ms: number;
  bytes: number;
  sha256: string;
}

/** GETs `path` to its end, hashing what arrives. */
export async function download(client: HourglassClient, id: string, path: string): Promise<Download> {
  const started = performance.now();
  const file = await client.readFile(id, path);
  const firstByteMs = performance.now() - started;
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const c of file.stream) {
    hash.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { firstByteMs, ms: performance.now() - started, bytes, sha256: hash.digest('hex') };
}
