// Checks a tar archive a sandbox made before this machine's tar unpacks it: the sandbox is hostile,
// and not every tar refuses what could write outside the destination (busybox tar follows `..`).
// Refused: absolute names, `..` segments, symlinks or hard links pointing outside, a member below a
// symlink the archive itself made (it could lead anywhere), devices and any other special member.
// ustar, GNU (long names, 'L'/'K') and pax ('x') headers are read.
import { open } from 'node:fs/promises';
import path from 'node:path';

const BLOCK = 512;

export class UnsafeArchiveError extends Error {
  constructor(member: string, why: string) {
    super(`refusing to unpack: member ${JSON.stringify(member)} ${why}`);
    this.name = 'UnsafeArchiveError';
  }
}

/** Throws UnsafeArchiveError at the first member that could reach outside the destination. */
export async function checkTarMembers(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const symlinks = new Set<string>();
    let pos = 0;
    let count = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> = {};
    for (;;) {
      const header = await readAt(fh, pos, BLOCK);
      if (header.length < BLOCK || header.every((b) => b === 0)) return count;
      const size = sizeOf(header);
      const type = String.fromCharCode(header[156]!);
      pos += BLOCK;
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
        const data = await readAt(fh, pos, size);
        if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
        if (type === 'K') longLink = data.toString('utf8').replace(/\0+$/, '');
        if (type === 'x') pax = paxRecords(data);
        if (type === 'g' && ['path', 'linkpath'].some((k) => k in paxRecords(data))) {
          throw new UnsafeArchiveError('(pax global header)', 'sets a path for every member');
        }
        pos += padded;
        continue;
      }
      const name = pax['GNU.sparse.name'] ?? pax.path ?? longName ?? ustarName(header);
      const link = pax.linkpath ?? longLink ?? text(header, 157, 100);
      pax = {};
      longName = longLink = undefined;
      check(name, type, link, symlinks);
      if (type === '2') symlinks.add(clean(name));
      count++;
      pos += padded;
    }
  } finally {
    await fh.close();
  }
}

/** Files (old and new), hard links, symlinks, directories, contiguous and sparse files: nothing else. */
const MEMBER_TYPES = new Set(['0', '\0', '1', '2', '5', '7', 'S']);

function check(name: string, type: string, link: string, symlinks: Set<string>): void {
  if (name.startsWith('/')) throw new UnsafeArchiveError(name, 'is an absolute path');
  if (name.split('/').includes('..')) throw new UnsafeArchiveError(name, 'has a .. segment');
  const parts = clean(name).split('/');
  for (let i = 1; i < parts.length; i++) {
    if (symlinks.has(parts.slice(0, i).join('/'))) {
      throw new UnsafeArchiveError(name, `lies below ${parts.slice(0, i).join('/')}, a symlink in the same archive`);
    }
  }
  if (!MEMBER_TYPES.has(type)) {
    throw new UnsafeArchiveError(name, `has a member type (${JSON.stringify(type)}) not unpacked here`);
  }
  if (type === '1' && (link.startsWith('/') || link.split('/').includes('..'))) {
    throw new UnsafeArchiveError(name, `is a hard link to ${JSON.stringify(link)}, outside the archive`);
  }
  if (type === '2') {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(clean(name)), link));
    if (link.startsWith('/') || target === '..' || target.startsWith('../')) {
      throw new UnsafeArchiveError(name, `is a symlink to ${JSON.stringify(link)}, outside the destination`);
    }
  }
}

/** A member's path without ./ and trailing slashes, as tar writes it. */
function clean(name: string): string {
  return path.posix.normalize(name).replace(/\/+$/, '').replace(/^\.\//, '');
}

function ustarName(h: Buffer): string {
  const name = text(h, 0, 100);
  const magic = h.subarray(257, 262).toString('latin1');
  const prefix = magic === 'ustar' ? text(h, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function text(h: Buffer, start: number, length: number): string {
  const field = h.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** Octal, or base-256 (GNU, for sizes past 8 GiB) when the high bit of the first byte is set. */
function sizeOf(h: Buffer): number {
  const field = h.subarray(124, 136);
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const digits = text(h, 124, 12).trim();
  return digits ? parseInt(digits, 8) : 0;
}

/** pax records: "<length> <key>=<value>\n", <length> counting the whole record in bytes. */
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < data.length;) {
    const space = data.indexOf(0x20, i);
    const length = space === -1 ? NaN : Number(data.subarray(i, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= space - i) throw new UnsafeArchiveError('(pax header)', 'is malformed');
    const record = data.subarray(space + 1, i + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += length;
  }
  return out;
}

async function readAt(fh: Awaited<ReturnType<typeof open>>, pos: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, pos);
  return buf.subarray(0, bytesRead);
}
