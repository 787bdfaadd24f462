// Reading /proc/self/mountinfo (proc(5)): which filesystems are mounted where, with their options.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  /** major:minor of the filesystem's device (field 3). */
  device: string;
  /** The directory of this mount inside its filesystem (field 4). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-superblock options; for cgroup v1 they name the controllers (`rw,memory`). */
  superOptions: string[];
}

/** Parses mountinfo text. Paths are octal-escaped by the kernel (a space is `\040`). */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    // Optional fields (shared:N, master:N…) run until a lone '-'.
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    entries.push({
      device: fields[2]!,
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      fsType: fields[dash + 1]!,
      source: unescapeOctal(fields[dash + 2]!),
      superOptions: fields[dash + 3]!.split(','),
    });
  }
  return entries;
}

export function readMountsSync(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
