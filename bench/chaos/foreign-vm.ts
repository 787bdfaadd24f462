// A "VM" that is not Hourglass's, planted in the process driver's state dir: the run checks at the
// end that no reaper, prune or destroy touched its files or killed its process.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive, type RecordedProcess } from '../../hypervisors/common/proc-identity';

export interface ForeignVm {
  dirs: string[];
  /** every file under dirs, with its sha256 at planting time */
  files: Map<string, string>;
  process: RecordedProcess;
}

/**
 * Two directories under <stateDir>/process/ that Hourglass did not create (no sandbox.json), one
 * named like a sandbox id, with a disk file and a "VM" process (a sleep started by this script,
 * cwd inside it) recorded in foreign.json.
 */
export function plantForeignVm(processRoot: string): ForeignVm {
  const dirs = [path.join(processRoot, 'foreign-vm'), path.join(processRoot, 'sbx-f0f0f0f0f0f0f0f0')];
  const files = new Map<string, string>();
  for (const dir of dirs) mkdirSync(path.join(dir, 'work'), { recursive: true });
  const child = spawn('sleep', ['infinity'], { cwd: path.join(dirs[0]!, 'work'), detached: true, stdio: 'ignore' });
  child.unref();
  const proc: RecordedProcess = { pid: child.pid!, startTime: readStartTimeSync(child.pid!) };
  for (const dir of dirs) {
    const disk = path.join(dir, 'disk.img');
    writeFileSync(disk, randomBytes(64 * 1024));
    writeFileSync(path.join(dir, 'foreign.json'), JSON.stringify({ owner: 'not hourglass', holder: proc }, null, 2));
    writeFileSync(path.join(dir, 'work', 'data.txt'), `foreign data ${randomBytes(8).toString('hex')}\n`);
  }
  for (const dir of dirs) for (const f of walk(dir)) files.set(f, fileHash(f));
  return { dirs, files, process: proc };
}

/** What changed since planting: files changed, gone or added, the process dead. Empty = untouched. */
export async function foreignTouched(f: ForeignVm): Promise<string[]> {
  const problems: string[] = [];
  for (const [file, hash] of f.files) {
    try {
      if (fileHash(file) !== hash) problems.push(`${file} changed`);
    } catch {
      problems.push(`${file} is gone`);
    }
  }
  for (const dir of f.dirs) {
    try {
      const now = new Set(walk(dir));
      for (const x of now) if (!f.files.has(x)) problems.push(`${x} appeared`);
    } catch {
      problems.push(`${dir} is gone`);
    }
  }
  if (!(await isAlive(f.process))) problems.push(`foreign process ${f.process.pid} is dead`);
  return problems;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function readStartTimeSync(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}
