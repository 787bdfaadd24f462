// `hourglass sandbox cp|ls|rm|mkdir`: files between this machine and a sandbox.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { contextOf, type CommandContext } from '../context';
import { formatEntry, integer, shown } from '../format';
import { parseOperand } from '../sandbox-path';
import { checkTarMembers } from '../tar-members';

const CP_HELP = `
Operands: <sandbox-id>:<path> is in a sandbox (relative to its workspace, or absolute beneath it),
anything else is local; '-' is stdin (upload) or stdout (download).
  hourglass sandbox cp ./a.txt sbx-1:/work/a.txt     upload (the local file's mode unless --mode)
  hourglass sandbox cp sbx-1:a.txt ./a.txt           download
  echo hi | hourglass sandbox cp - sbx-1:hi.txt
A sandbox directory comes down as a tar archive: written as it is (to <dest>, or <dest>/<name>.tar
when <dest> is a directory, or to stdout with '-'), or unpacked into <dest> with --extract (this
machine's tar, without owners or permissions from the archive; an archive with an absolute or '..'
name, a link pointing outside <dest>, or a device is refused before anything is unpacked).
Uploading a directory is not supported: upload a tar and run tar -x in the sandbox.`;

export function addFileCommands(sandbox: Command): void {
  sandbox
    .command('cp <source> <dest>')
    .description('copy a file between this machine and a sandbox')
    .option('--mode <octal>', 'permission bits of an uploaded file (e.g. 755)')
    .option('-x, --extract', 'a directory download: unpack the tar into <dest>')
    .addHelpText('after', CP_HELP)
    .action(async (source: string, dest: string, o, cmd: Command) => {
      const ctx = contextOf(cmd);
      const from = parseOperand(source);
      const to = parseOperand(dest);
      if ('local' in from && 'sandbox' in to) return upload(ctx, from.local, to, o.mode);
      if ('sandbox' in from && 'local' in to) return download(ctx, from, to.local, Boolean(o.extract));
      throw new Error('cp copies between this machine and a sandbox: name one side as <sandbox-id>:<path>');
    });

  sandbox
    .command('ls <id> [path]')
    .description('list a directory (default: the workspace)')
    .option('--limit <n>', 'at most this many entries', integer)
    .action(async (id: string, dir: string | undefined, o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const listing = await client.listFiles(id, dir, { limit: o.limit });
      print(listing, () =>
        [
          ...listing.entries.map(formatEntry),
          `${listing.entries.length} entr${listing.entries.length === 1 ? 'y' : 'ies'} in ${shown(listing.path)}` +
            (listing.truncated ? ' (truncated: --limit)' : ''),
        ].join('\n'),
      );
    });

  sandbox
    .command('rm <id> <path>')
    .option('-r, --recursive', 'remove a directory and everything in it')
    .action(async (id: string, file: string, o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const removed = await client.removeFile(id, file, { recursive: Boolean(o.recursive) });
      print(removed, () => `${shown(removed.path)}: ${removed.existed ? 'removed' : 'did not exist'}`);
    });

  sandbox
    .command('mkdir <id> <path>')
    .option('-p, --parents', 'create missing parents too')
    .action(async (id: string, dir: string, o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const made = await client.makeDirectory(id, dir, { parents: Boolean(o.parents) });
      print(made, () => `${shown(made.path)}: created`);
    });
}

async function upload(
  { client, print }: CommandContext,
  local: string,
  to: { sandbox: string; path: string },
  mode: string | undefined,
): Promise<void> {
  let target = to.path;
  let data: NodeJS.ReadableStream = process.stdin;
  if (local !== '-') {
    const st = await stat(local);
    if (st.isDirectory()) throw new Error(`${local} is a directory: cp uploads files (upload a tar, then tar -x)`);
    mode ??= (st.mode & 0o777).toString(8);
    data = createReadStream(local);
    if (target.endsWith('/')) target += path.basename(local);
  } else if (target.endsWith('/')) {
    throw new Error('uploading stdin: name the file (<sandbox-id>:<dir>/<name>)');
  }
  const written = await client.writeFile(to.sandbox, target, data, { mode });
  print(written, () => `${to.sandbox}:${shown(written.path)}  ${written.size} bytes  sha256 ${written.sha256}`);
}

async function download(
  { client, print }: CommandContext,
  from: { sandbox: string; path: string },
  local: string,
  extract: boolean,
): Promise<void> {
  const got = await client.readFile(from.sandbox, from.path);
  if (local === '-') return void (await pipeline(got.stream, process.stdout, { end: false }));
  const name = path.basename(from.path) || 'workspace';
  const isDir = await stat(local).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const summary = { sandbox: from.sandbox, path: from.path, kind: got.kind, size: got.size, sha256: got.sha256 };
  if (got.kind === 'directory' && extract) {
    await mkdir(local, { recursive: true });
    await untar(got.stream, local);
    return print({ ...summary, extractedTo: local }, () => `${from.sandbox}:${from.path} → ${local}/ (unpacked)`);
  }
  const file = isDir ? path.join(local, got.kind === 'directory' ? `${name}.tar` : name) : local;
  try {
    await pipeline(got.stream, createWriteStream(file));
  } catch (err) {
    await rm(file, { force: true }); // no half file left looking complete
    throw err;
  }
  print({ ...summary, file }, () => `${from.sandbox}:${from.path} → ${file}  ${got.size} bytes  sha256 ${got.sha256}`);
}

/**
 * Unpacks with this machine's tar, told not to take owners or permissions from an archive a sandbox
 * made. The archive is kept in a private temp file first and its members checked (tar-members.ts):
 * not every tar refuses `..`, absolute names or links pointing out.
 */
async function untar(archive: Readable, dir: string): Promise<void> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'hourglass-cp-'));
  try {
    const file = path.join(tmp, 'archive.tar');
    await pipeline(archive, createWriteStream(file, { mode: 0o600 }));
    await checkTarMembers(file);
    const tar = spawn('tar', ['-x', '-f', file, '-C', dir, '--no-same-owner', '--no-same-permissions'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const [code, signal] = (await once(tar, 'exit')) as [number | null, NodeJS.Signals | null];
    if (code !== 0) throw new Error(`tar -x into ${dir} failed (${signal ?? `exit ${code}`})`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
