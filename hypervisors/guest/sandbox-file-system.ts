// The files of a sandbox, the same on every driver: paths confined lexically here (sandbox-paths.ts),
// then every operation a small sh script inside the sandbox (file-scripts.ts) that checks symlinks
// and acts in one go; bytes move through the driver's FileTransport. What the sandbox decides the
// size of (a file read, a listing) is capped as it is read.
import { BadSpecError } from '../errors';
import type { FileEntry, OpContext, SandboxFileSystem } from '../types';
import { CappedSink, TooLargeError } from './capped-sink';
import {
  FileExit,
  KIND_MARKER,
  LIST_SCRIPT,
  MKDIR_SCRIPT,
  parseListing,
  REMOVE_SCRIPT,
  scriptArgv,
  STAT_SCRIPT,
  STREAM_SCRIPT,
  TAR_TO_FILE_SCRIPT,
  WRITE_FINISH_SCRIPT,
  WRITE_PREPARE_SCRIPT,
} from './file-scripts';
import type { FileTransport } from './file-transport';
import { largeOutput } from './large-output';
import { listingResult } from './listing-result';
import { outputBytes } from './output';
import { confinePath, shown } from './sandbox-paths';
import { scriptFailure, scriptResult } from './script-failure';
import { removeTemp } from './temp-file';
import { checkMode, type ExpectedBytes, WriteCheck } from './write-check';

/** Seconds a bookkeeping script may take (a listing of a large directory on a TCG guest included). */
const SCRIPT_TIMEOUT_SECONDS = 120;
/**
 * A listing's raw output held in memory to sort it: ~28,000 entries of 255-byte names, ~100,000
 * of ordinary ones. Past it the directory is too big to list at once (too_large).
 */
const MAX_LISTING_BYTES = 8 * 1024 * 1024;
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
    opts: { mode?: number; expect?: ExpectedBytes },
    ctx?: OpContext,
  ): Promise<{ path: string; size: number }> {
    const mode = opts.mode ?? DEFAULT_MODE;
    checkMode(id, mode);
    const { t, path } = await this.open(id, userPath);
    const temp = (await this.script(t, userPath, WRITE_PREPARE_SCRIPT, [path], ctx)).toString('utf8');
    const check = new WriteCheck(id, path, opts.expect);
    try {
      check.verify(await t.writeBytes(temp, check.source(data), ctx));
    } catch (err) {
      // Cancelled, the data failed or is not what was sent: the temporary file must not stay.
      await removeTemp(t, temp);
      throw err;
    }
    await this.script(t, userPath, WRITE_FINISH_SCRIPT, [path, temp, mode.toString(8)], ctx);
    return { path, size: check.size };
  }

  async readFile(
    id: string,
    userPath: string,
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
    opts: { maxBytes?: number } = {},
  ): Promise<{ path: string; kind: 'file' | 'directory'; size: number }> {
    const { t, path } = await this.open(id, userPath);
    const max = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    const tooLarge = () =>
      new TooLargeError(`sandbox ${id}: ${shown(path)} is over ${max} bytes, the most one read carries; stopped there`);
    const capped = new CappedSink(sink, max, tooLarge);
    try {
      return await this.readInto(t, userPath, path, capped.push, ctx);
    } catch (err) {
      throw capped.cause(err);
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
    const argv = scriptArgv(LIST_SCRIPT, [t.workspace, path]);
    const tooLarge = () =>
      new TooLargeError(
        `sandbox ${id}: the directory ${shown(path)} has too many entries to list at once ` +
          `(over ${MAX_LISTING_BYTES} bytes of names); list a directory inside it`,
      );
    const options = { maxBytes: MAX_LISTING_BYTES, tooLarge, timeoutSeconds: SCRIPT_TIMEOUT_SECONDS };
    // An entry removed between the glob and its stat: list again.
    for (let attempt = 1; ; attempt++) {
      const { result, stdout } = await largeOutput(t, argv, options, ctx);
      if (result.exitCode === FileExit.Changed && attempt < 3) continue;
      if (result.exitCode !== 0) throw scriptFailure(t, userPath, result);
      return listingResult(path, parseListing(stdout), opts.limit);
    }
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

  /** readFile's bytes into `sink`: one streaming command where the transport can, else stat then read. */
  private async readInto(
    t: FileTransport,
    userPath: string,
    path: string,
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
  ): Promise<{ path: string; kind: 'file' | 'directory'; size: number }> {
    if (t.streamOutput) {
      // One command checks and streams: nothing can be swapped between the check and the read.
      const r = await t.streamOutput(scriptArgv(STREAM_SCRIPT, [t.workspace, path]), sink, ctx);
      const [first = '', ...rest] = r.stderr.split('\n');
      const said = first.startsWith(KIND_MARKER) ? rest.join('\n') : r.stderr;
      if (r.exitCode !== 0) throw scriptFailure(t, userPath, scriptResult(r.exitCode, said));
      const kind = first === `${KIND_MARKER}d` ? 'directory' : first === `${KIND_MARKER}f` ? 'file' : null;
      if (!kind) throw new Error(`sandbox ${t.id}: reading ${shown(path)}: the script said ${shown(r.stderr)}`);
      return { path, kind, size: r.size };
    }
    const [kind, real] = splitFirstLine((await this.script(t, userPath, STAT_SCRIPT, [path], ctx)).toString('utf8'));
    if (kind === 'f') return { path, kind: 'file', size: await t.readBytes(real, sink, ctx) };
    const tar = (await this.script(t, userPath, TAR_TO_FILE_SCRIPT, [path], ctx)).toString('utf8');
    try {
      return { path, kind: 'directory', size: await t.readBytes(tar, sink, ctx) };
    } finally {
      await removeTemp(t, tar);
    }
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
    if (r.exitCode !== 0) throw scriptFailure(t, userPath, r);
    return outputBytes(r.stdout, r.stdoutBase64);
  }
}

function splitFirstLine(text: string): [string, string] {
  const nl = text.indexOf('\n');
  return nl < 0 ? [text, ''] : [text.slice(0, nl), text.slice(nl + 1)];
}
