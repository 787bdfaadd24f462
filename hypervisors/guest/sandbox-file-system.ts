// The files of a sandbox, the same on every driver: paths confined lexically here (sandbox-paths.ts),
// then every operation a small sh script inside the sandbox (file-scripts.ts) that checks symlinks
// and acts in one go; bytes move through the driver's FileTransport.
import { randomBytes } from 'node:crypto';
import { BadSpecError, BusyError, PathNotFoundError } from '../errors';
import type { ExecResult, FileEntry, OpContext, SandboxFileSystem } from '../types';
import { EXEC_OUTPUT_CAP_BYTES } from './contract';
import {
  FileExit,
  KIND_MARKER,
  LIST_SCRIPT,
  MKDIR_SCRIPT,
  parseListing,
  REMOVE_SCRIPT,
  REMOVE_TEMP_SCRIPT,
  scriptArgv,
  STAT_SCRIPT,
  STREAM_SCRIPT,
  TAR_TO_FILE_SCRIPT,
  WRITE_FINISH_SCRIPT,
  WRITE_PREPARE_SCRIPT,
  type RawEntry,
} from './file-scripts';
import type { FileTransport } from './file-transport';
import { outputBytes } from './output';
import { confinePath, shown } from './sandbox-paths';

/** Seconds a bookkeeping script may take (a listing of a large directory on a TCG guest included). */
const SCRIPT_TIMEOUT_SECONDS = 120;
/** Listings bigger than this are refused rather than held in memory. */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;
const DEFAULT_MODE = 0o644;

export class TransportFileSystem implements SandboxFileSystem {
  constructor(private readonly transportOf: (id: string) => Promise<FileTransport>) {}

  async workspaceOf(id: string): Promise<string> {
    return (await this.transportOf(id)).workspace;
  }

  async writeFile(
    id: string,
    userPath: string,
    data: AsyncIterable<Buffer>,
    opts: { mode?: number },
    ctx?: OpContext,
  ): Promise<{ path: string; size: number }> {
    const mode = opts.mode ?? DEFAULT_MODE;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new BadSpecError(`sandbox ${id}: mode must be octal permission bits 0–7777 (got ${mode})`);
    }
    const { t, path } = await this.open(id, userPath);
    const temp = (await this.script(t, userPath, WRITE_PREPARE_SCRIPT, [path], ctx)).toString('utf8');
    let size: number;
    try {
      size = await t.writeBytes(temp, data, ctx);
    } catch (err) {
      // Cancelled or the data failed: the half-written file must not stay (best effort).
      await t.run(scriptArgv(REMOVE_TEMP_SCRIPT, [temp]), { timeoutSeconds: 30 }).catch(() => undefined);
      throw err;
    }
    await this.script(t, userPath, WRITE_FINISH_SCRIPT, [path, temp, mode.toString(8)], ctx);
    return { path, size };
  }

  async readFile(
    id: string,
    userPath: string,
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
  ): Promise<{ path: string; kind: 'file' | 'directory'; size: number }> {
    const { t, path } = await this.open(id, userPath);
    if (t.streamOutput) {
      // One command checks and streams: nothing can be swapped between the check and the read.
      const r = await t.streamOutput(scriptArgv(STREAM_SCRIPT, [t.workspace, path]), sink, ctx);
      const [first = '', ...rest] = r.stderr.split('\n');
      const said = first.startsWith(KIND_MARKER) ? rest.join('\n') : r.stderr;
      if (r.exitCode !== 0) throw this.failure(t, userPath, scriptResult(r.exitCode, said));
      const kind = first === `${KIND_MARKER}d` ? 'directory' : first === `${KIND_MARKER}f` ? 'file' : null;
      if (!kind) throw new Error(`sandbox ${id}: reading ${shown(path)}: the script said ${shown(r.stderr)}`);
      return { path, kind, size: r.size };
    }
    const [kind, real] = splitFirstLine((await this.script(t, userPath, STAT_SCRIPT, [path], ctx)).toString('utf8'));
    if (kind === 'f') return { path, kind: 'file', size: await t.readBytes(real, sink, ctx) };
    const tar = (await this.script(t, userPath, TAR_TO_FILE_SCRIPT, [path], ctx)).toString('utf8');
    try {
      return { path, kind: 'directory', size: await t.readBytes(tar, sink, ctx) };
    } finally {
      await t.run(scriptArgv(REMOVE_TEMP_SCRIPT, [tar]), { timeoutSeconds: 30 }).catch(() => undefined);
    }
  }

  async listFiles(
    id: string,
    userPath: string,
    opts: { limit: number },
    ctx?: OpContext,
  ): Promise<{ path: string; entries: FileEntry[]; truncated: boolean }> {
    if (!Number.isInteger(opts.limit) || opts.limit < 1) {
      throw new BadSpecError(`sandbox ${id}: limit must be a positive integer (got ${opts.limit})`);
    }
    const { t, path } = await this.open(id, userPath);
    let raw: RawEntry[] | undefined;
    // An entry removed between the glob and its stat: list again.
    for (let attempt = 1; !raw; attempt++) {
      const out = await this.largeOutput(t, userPath, LIST_SCRIPT, [path], ctx, attempt < 3);
      if (out) raw = parseListing(out);
    }
    raw.sort((a, b) => Buffer.compare(a.name, b.name));
    return {
      path,
      entries: raw.slice(0, opts.limit).map(toEntry),
      truncated: raw.length > opts.limit,
    };
  }

  async removeFile(
    id: string,
    userPath: string,
    opts: { recursive: boolean },
    ctx?: OpContext,
  ): Promise<{ existed: boolean }> {
    const { t, path } = await this.open(id, userPath);
    if (path === t.workspace) {
      throw new BadSpecError(`sandbox ${id}: the workspace ${t.workspace} itself cannot be removed`);
    }
    const out = await this.script(t, userPath, REMOVE_SCRIPT, [path, opts.recursive ? '1' : '0'], ctx);
    return { existed: out.toString('utf8').trim() === 'removed' };
  }

  async makeDirectory(
    id: string,
    userPath: string,
    opts: { parents: boolean },
    ctx?: OpContext,
  ): Promise<{ path: string }> {
    const { t, path } = await this.open(id, userPath);
    await this.script(t, userPath, MKDIR_SCRIPT, [path, opts.parents ? '1' : '0'], ctx);
    return { path };
  }

  private async open(id: string, userPath: string): Promise<{ t: FileTransport; path: string }> {
    const t = await this.transportOf(id);
    return { t, path: confinePath(id, t.workspace, userPath) };
  }

  /** Runs a script ($1 workspace, $2.. args) and returns its stdout; its refusals become errors. */
  private async script(
    t: FileTransport,
    userPath: string,
    script: string,
    args: string[],
    ctx?: OpContext,
  ): Promise<Buffer> {
    const r = await t.run(scriptArgv(script, [t.workspace, ...args]), { timeoutSeconds: SCRIPT_TIMEOUT_SECONDS }, ctx);
    if (r.exitCode !== 0) throw this.failure(t, userPath, r);
    return outputBytes(r.stdout, r.stdoutBase64);
  }

  /**
   * A script's whole stdout, however big: streamed when the transport can, else run plainly and,
   * past exec's cap, again into a temporary file that is then read. Null: it exited Changed and
   * `retry` allows another go.
   */
  private async largeOutput(
    t: FileTransport,
    userPath: string,
    script: string,
    args: string[],
    ctx: OpContext | undefined,
    retry: boolean,
  ): Promise<Buffer | null> {
    const argv = scriptArgv(script, [t.workspace, ...args]);
    const parts: Buffer[] = [];
    let total = 0;
    const collect = async (chunk: Buffer) => {
      total += chunk.length;
      if (total > MAX_LISTING_BYTES) {
        throw new BadSpecError(`sandbox ${t.id}: the listing of ${shown(userPath)} is over ${MAX_LISTING_BYTES} bytes`);
      }
      parts.push(chunk);
    };
    let r: ExecResult;
    if (t.streamOutput) {
      const s = await t.streamOutput(argv, collect, ctx);
      r = scriptResult(s.exitCode, s.stderr);
    } else {
      r = await t.run(argv, { timeoutSeconds: SCRIPT_TIMEOUT_SECONDS }, ctx);
      const out = outputBytes(r.stdout, r.stdoutBase64);
      if (r.exitCode === 0 && out.length <= EXEC_OUTPUT_CAP_BYTES) return out;
      if (r.exitCode === 0) r = await this.throughTempFile(t, argv, collect, ctx);
    }
    if (r.exitCode === FileExit.Changed && retry) return null;
    if (r.exitCode !== 0) throw this.failure(t, userPath, r);
    return Buffer.concat(parts);
  }

  /** Runs argv with its stdout into a temporary file in the sandbox, reads it, removes it. */
  private async throughTempFile(
    t: FileTransport,
    argv: string[],
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
  ): Promise<ExecResult> {
    const temp = `/tmp/.hourglass-out.${randomBytes(8).toString('hex')}`;
    const wrapped = ['/bin/sh', '-c', 'o=$1; shift; "$@" > "$o"', 'hourglass-files', temp, ...argv];
    try {
      const r = await t.run(wrapped, { timeoutSeconds: SCRIPT_TIMEOUT_SECONDS }, ctx);
      if (r.exitCode === 0) await t.readBytes(temp, sink, ctx);
      return r;
    } finally {
      await t.run(scriptArgv(REMOVE_TEMP_SCRIPT, [temp]), { timeoutSeconds: 30 }).catch(() => undefined);
    }
  }

  /** The error for a script that did not exit 0: its refusals by exit code (file-scripts.ts), else what it said. */
  private failure(t: FileTransport, userPath: string, r: ExecResult): Error {
    const detail = outputBytes(r.stderr, r.stderrBase64).toString('utf8');
    const path = shown(userPath);
    switch (r.exitCode) {
      case FileExit.Escapes:
        return new BadSpecError(
          `sandbox ${t.id}: path ${path} resolves to ${shown(detail)}, outside the workspace ${t.workspace} ` +
            '(a symlink points out of it)',
        );
      case FileExit.NotFound:
        return new PathNotFoundError(t.id, detail || userPath);
      case FileExit.WrongKind:
        return new BadSpecError(`sandbox ${t.id}: path ${path} ${detail}`);
      case FileExit.NoWorkspace:
        // Without isolation: a directory above the host work dir that uid 65534 may not search.
        return new BusyError(
          `sandbox ${t.id}: its workspace ${t.workspace} cannot be resolved from inside it: it must exist and ` +
            'every directory above it be searchable by the user commands run as',
        );
      case FileExit.Changed:
        return new BusyError(`sandbox ${t.id}: the directory ${path} kept changing while it was listed; try again`);
    }
    if (r.timedOut) {
      return new BusyError(`sandbox ${t.id}: the file operation on ${path} timed out after ${r.durationMs} ms`);
    }
    const said = detail.trim() || `exit code ${r.exitCode}`;
    return new BadSpecError(`sandbox ${t.id}: the file operation on ${path} failed: ${said}`);
  }
}

function scriptResult(exitCode: number, stderr: string): ExecResult {
  return { exitCode, stdout: '', stderr, durationMs: 0, timedOut: false };
}

function splitFirstLine(text: string): [string, string] {
  const nl = text.indexOf('\n');
  return nl < 0 ? [text, ''] : [text.slice(0, nl), text.slice(nl + 1)];
}

const TYPES: Record<number, FileEntry['type']> = { 0o100000: 'file', 0o040000: 'directory', 0o120000: 'symlink' };

function toEntry(e: RawEntry): FileEntry {
  return {
    name: e.name.toString('utf8'),
    type: TYPES[e.mode & 0o170000] ?? 'other',
    size: e.size,
    mode: (e.mode & 0o7777).toString(8),
    mtime: new Date(e.mtimeSeconds * 1000).toISOString(),
  };
}
