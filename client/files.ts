// A sandbox's files as Node streams: uploads go out streamed (never buffered whole here), downloads
// come back as a Readable that checks the server's sha256 at its end.
import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { HourglassApiError } from './errors';
import { seg, type Http } from './http';
import type { FileKind, FileListing, MadeDirectory, RemovedFile, WriteFileResult } from './types';

const files = (id: string) => `/v1/sandboxes/${seg(id)}/files`;

/**
 * Writes a file (parents must exist). `mode`: permission bits as a number (0o644) or octal digits
 * ('644'). A stream is sent as it is read (chunked); the API takes up to 100 MiB (413 too_large).
 */
export function writeFile(
  http: Http,
  id: string,
  path: string,
  data: Buffer | Uint8Array | string | NodeJS.ReadableStream,
  opts: { mode?: number | string; signal?: AbortSignal } = {},
): Promise<WriteFileResult> {
  const mode = typeof opts.mode === 'number' ? opts.mode.toString(8) : opts.mode;
  const body = typeof data === 'string' ? Buffer.from(data) : data instanceof Uint8Array ? data : bytesOf(data);
  return http.json('PUT', files(id), {
    query: { path, mode },
    body,
    raw: true,
    headers: { 'content-type': 'application/octet-stream' },
    signal: opts.signal,
  });
}

export interface FileDownload {
  /** file: the bytes; directory: a tar archive of it. */
  kind: FileKind;
  size: number;
  sha256: string;
  /** Errors at its end if the bytes do not hash to sha256. */
  stream: Readable;
}

/** Reads a file (or a directory, as a tar stream). Read the stream to the end or destroy it. */
export async function readFile(
  http: Http,
  id: string,
  path: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FileDownload> {
  const res = await http.send('GET', files(id), { query: { path }, signal: opts.signal });
  const kind: FileKind = res.headers.get('hourglass-file-kind') === 'directory' ? 'directory' : 'file';
  const sha256 = res.headers.get('hourglass-sha256') ?? '';
  const size = Number(res.headers.get('content-length') ?? NaN);
  const body = res.body ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) : Readable.from([]);
  const stream = sha256 ? pipeline(body, checkSha256(sha256, path), () => {}) : body;
  return { kind, size, sha256, stream };
}

/** readFile, gathered into one Buffer. */
export async function readFileBuffer(http: Http, id: string, path: string): Promise<Buffer> {
  const { stream } = await readFile(http, id, path);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A directory's entries (default the workspace); `truncated` when there were more than `limit`. */
export function listFiles(http: Http, id: string, path?: string, opts: { limit?: number } = {}): Promise<FileListing> {
  return http.json('GET', `${files(id)}/list`, { query: { path, limit: opts.limit } });
}

/** Removes a file (a directory only with recursive); `existed` false when there was nothing. */
export function removeFile(
  http: Http,
  id: string,
  path: string,
  opts: { recursive?: boolean } = {},
): Promise<RemovedFile> {
  return http.json('DELETE', files(id), { query: { path, recursive: opts.recursive ? 'true' : undefined } });
}

export function makeDirectory(
  http: Http,
  id: string,
  path: string,
  opts: { parents?: boolean } = {},
): Promise<MadeDirectory> {
  return http.json('POST', `${files(id)}/mkdir`, { body: { path, ...opts } });
}

/** A stream's chunks as bytes (a stream in text mode yields strings). */
async function* bytesOf(stream: NodeJS.ReadableStream): AsyncGenerator<Uint8Array> {
  for await (const c of stream) yield typeof c === 'string' ? Buffer.from(c) : c;
}

function checkSha256(expected: string, path: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const got = hash.digest('hex');
      if (got === expected.toLowerCase()) return done();
      const message = `${path}: the bytes received hash to ${got}, the server said ${expected}`;
      done(new HourglassApiError(0, 'checksum_mismatch', message, { expected, got }));
    },
  });
}
