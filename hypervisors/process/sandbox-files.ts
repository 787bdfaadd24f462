// Where a process sandbox lives on disk: `<state>/process/<id>/` (its record, work dir, holder and
// network files) and the driver's own files beside it in `<state>/process-assets/` (workspace
// templates, locks, the compiled seccomp filter).
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, realpathSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BadSpecError } from '../errors';
import { readRecord, writeRecord, type SandboxRecord } from './record';
import { sandboxSeccompFilter } from './seccomp-policy';

export class SandboxFiles {
  /** `<state>/process`, absolute and without symlinks. */
  readonly root: string;
  /** The driver's own files, beside the sandboxes' directories. */
  readonly assets: string;
  private seccompFile?: Promise<string>;

  constructor(stateDir: string) {
    // Absolute and without symlinks: recorded paths must mean the same to any later worker, and
    // the kernel names a loop device's backing file that way.
    // Others may pass through (an isolation-none command, as uid 65534, runs in its work dir) but
    // not list the sandboxes nor read their records.
    mkdirSync(path.join(stateDir, 'process'), { recursive: true });
    chmodSync(path.join(stateDir, 'process'), 0o711);
    this.root = realpathSync(path.join(stateDir, 'process'));
    this.assets = path.join(path.dirname(this.root), 'process-assets');
  }

  dir(id: string): string {
    return path.join(this.root, safeName(id));
  }

  workDir(id: string): string {
    return path.join(this.dir(id), 'work');
  }

  read(id: string): Promise<SandboxRecord | null> {
    return readRecord(this.dir(id));
  }

  write(r: SandboxRecord): Promise<void> {
    return writeRecord(this.dir(r.id), r);
  }

  /** Every sandbox with a readable record, in directory order. */
  async records(): Promise<SandboxRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const records: SandboxRecord[] = [];
    for (const name of names) {
      const r = await readRecord(path.join(this.root, name));
      if (r && r.id === name) records.push(r);
    }
    return records;
  }

  /** The compiled filter, written once per driver instance (bwrap reads it from a descriptor). */
  seccompFilter(): Promise<string> {
    this.seccompFile ??= (async () => {
      const file = path.join(this.assets, 'seccomp', 'sandbox.bpf');
      await mkdir(path.dirname(file), { recursive: true });
      const partial = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(partial, sandboxSeccompFilter());
      await rename(partial, file);
      return file;
    })();
    this.seccompFile.catch(() => (this.seccompFile = undefined));
    return this.seccompFile;
  }
}

/** Sandbox ids become directory and cgroup names: refuse anything that could escape them. */
function safeName(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new BadSpecError(`invalid sandbox id '${id}'`);
  return id;
}
