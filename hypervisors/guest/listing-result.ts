// A directory listing as callers get it: sorted by name, at most `limit` entries, and small
// enough to travel through workflow history (a listing is a files update's result).
import type { FileEntry } from '../types';
import type { RawEntry } from './file-scripts';

/** The most JSON a listing result may take, whatever the limit: thousands of entries of odd names still fit. */
export const MAX_LISTING_RESULT_BYTES = 256 * 1024;

const TYPES: Record<number, FileEntry['type']> = { 0o100000: 'file', 0o040000: 'directory', 0o120000: 'symlink' };

export function listingResult(
  path: string,
  raw: RawEntry[],
  limit: number,
): { path: string; entries: FileEntry[]; truncated: boolean } {
  const sorted = [...raw].sort((a, b) => Buffer.compare(a.name, b.name));
  let room = MAX_LISTING_RESULT_BYTES - jsonBytes({ path, entries: [], truncated: false });
  const entries: FileEntry[] = [];
  for (const e of sorted) {
    if (entries.length >= limit) break;
    const entry = toEntry(e);
    room -= jsonBytes(entry) + 1; // and its comma
    if (room < 0) break;
    entries.push(entry);
  }
  return { path, entries, truncated: entries.length < sorted.length };
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

function toEntry(e: RawEntry): FileEntry {
  return {
    name: e.name.toString('utf8'),
    type: TYPES[e.mode & 0o170000] ?? 'other',
    size: e.size,
    mode: (e.mode & 0o7777).toString(8),
    mtime: new Date(e.mtimeSeconds * 1000).toISOString(),
  };
}
