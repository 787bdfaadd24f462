// Where a figure was measured: machine, load, commit and versions, for the JSON line.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '..', '..');

export interface Machine {
  cpus: number;
  cpuModel: string;
  totalMemoryMiB: number;
  kernel: string;
  cgroup: string;
  loadavgStart: number[];
  loadavgEnd?: number[];
}

export function machine(): Machine {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    kernel: os.release(),
    cgroup: cgroupVersion(),
    loadavgStart: loadavg(),
  };
}

export const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

// statfs magic numbers (linux/magic.h): a cgroup2 root is v2, a tmpfs of controllers is v1.
const CGROUP2_SUPER_MAGIC = 0x63677270;
const TMPFS_MAGIC = 0x01021994;

function cgroupVersion(): string {
  try {
    const type = statfsSync('/sys/fs/cgroup').type;
    if (type === CGROUP2_SUPER_MAGIC) return 'v2';
    if (type === TMPFS_MAGIC) {
      const hybrid =
        existsSync('/sys/fs/cgroup/unified') && statfsSync('/sys/fs/cgroup/unified').type === CGROUP2_SUPER_MAGIC;
      return hybrid ? 'v1 (hybrid: v2 at /sys/fs/cgroup/unified)' : 'v1';
    }
    return `unknown (statfs type 0x${type.toString(16)})`;
  } catch {
    return 'none';
  }
}

export function commit(): { sha: string; dirty: boolean } {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO }).toString().trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO })
      .toString()
      .trim();
    return { sha, dirty: status.length > 0 };
  } catch {
    return { sha: 'unknown', dirty: true };
  }
}

/** node and the @temporalio packages as installed (package.json names them). */
export function packageVersions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const versions: Record<string, string> = { node: process.version };
  for (const [name, declared] of Object.entries(pkg.dependencies ?? {})) {
    if (!name.startsWith('@temporalio/')) continue;
    try {
      versions[name] = JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      versions[name] = declared;
    }
  }
  return versions;
}

/** `<binary> --version`'s first line, or what went wrong. */
export function binaryVersion(binary: string): string {
  try {
    return execFileSync(binary, ['--version'], { timeout: 10_000 }).toString().split('\n')[0]!.trim();
  } catch (err) {
    return `unknown (${(err as Error).message.split('\n')[0]})`;
  }
}
