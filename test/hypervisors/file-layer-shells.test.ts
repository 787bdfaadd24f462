// The common file layer (hypervisors/guest/sandbox-file-system.ts) under each shape of shell and
// tools a sandbox may have: dash with GNU coreutils (process sandboxes see the host's /usr) and
// busybox 1.35 ash with its applets only (the VM guests), with and without a streaming transport
// (qemu-ga returns output at exit: directories then go through a temporary tar, big listings
// through a temporary file). Commands run on this host in a temporary workspace: what is under
// test is the scripts and the layer, not a sandbox's confinement (the driver suites test that).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cappedOutput } from '../../hypervisors/guest/exec-result';
import type { FileTransport } from '../../hypervisors/guest/file-transport';
import { MAX_LISTING_RESULT_BYTES } from '../../hypervisors/guest/listing-result';
import { TransportFileSystem } from '../../hypervisors/guest/sandbox-file-system';
import type { ExecResult } from '../../hypervisors/types';
import { fileSystemContract } from './data-plane-contract';

interface Shape {
  name: string;
  /** The shell `/bin/sh` stands for. */
  sh: string;
  PATH: string;
  streaming: boolean;
}

const root = mkdtempSync(path.join(os.tmpdir(), 'hg-file-layer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A directory holding only busybox's applets: the tools a VM guest has. */
function busyboxBin(): string {
  const bin = path.join(root, 'busybox-bin');
  mkdirSync(bin);
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  if (!busybox) throw new Error('busybox is needed for this test (Debian: apt-get install busybox)');
  const applets = spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const applet of applets) symlinkSync(busybox, path.join(bin, applet));
  return bin;
}

const bb = busyboxBin();
const shapes: Shape[] = [
  { name: 'dash + coreutils, streaming', sh: '/bin/sh', PATH: '/usr/bin:/bin', streaming: true },
  { name: 'busybox ash, streaming', sh: path.join(bb, 'sh'), PATH: bb, streaming: true },
  { name: 'busybox ash, output at exit', sh: path.join(bb, 'sh'), PATH: bb, streaming: false },
  { name: 'dash + coreutils, output at exit', sh: '/bin/sh', PATH: '/usr/bin:/bin', streaming: false },
];

/** Runs argv on this host in `cwd`, `/bin/sh` meaning the shape's shell; stdin streamed in, stdout out. */
function spawnIn(
  shape: Shape,
  cwd: string,
  argv: string[],
  stdin: AsyncIterable<Buffer> | Buffer | undefined,
  onStdout: (chunk: Buffer) => Promise<void> | void,
): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> {
  const [file, ...args] = argv;
  const child = spawn(file === '/bin/sh' ? shape.sh : file!, args, { cwd, env: { PATH: shape.PATH } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  // A failing source or sink ends the command (as the drivers do) and is the error.
  let failed: { err: unknown } | undefined;
  const fail = (err: unknown) => {
    failed ??= { err };
    child.kill('SIGKILL');
  };
  let sinking = Promise.resolve();
  child.stdout.on('data', (c: Buffer) => {
    out.push(c);
    child.stdout.pause();
    sinking = sinking
      .then(() => (failed ? undefined : onStdout(c)))
      .catch(fail)
      .finally(() => child.stdout.resume());
  });
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => undefined);
  const fed = (async () => {
    if (stdin === undefined || Buffer.isBuffer(stdin)) return child.stdin.end(stdin ?? '');
    for await (const chunk of stdin) {
      if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
    }
    child.stdin.end();
  })().catch(fail);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      void Promise.all([fed, sinking]).then(() => {
        if (failed) return reject(failed.err);
        const exitCode = code ?? 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 0);
        resolve({ exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
      });
    });
  });
}

function localTransport(shape: Shape, id: string, workspace: string): FileTransport {
  const run = async (command: string[], opts: { stdin?: Buffer } = {}): Promise<ExecResult> => {
    const started = Date.now();
    const r = await spawnIn(shape, workspace, command, opts.stdin, () => undefined);
    return {
      exitCode: r.exitCode,
      ...cappedOutput({ bytes: r.stdout }, { bytes: r.stderr }),
      durationMs: Date.now() - started,
      timedOut: false,
    };
  };
  const streamOutput = async (command: string[], sink: (chunk: Buffer) => Promise<void>) => {
    let size = 0;
    const r = await spawnIn(shape, workspace, command, undefined, async (c) => {
      size += c.length;
      await sink(c);
    });
    return { exitCode: r.exitCode, stderr: r.stderr.toString('utf8'), size };
  };
  return {
    id,
    workspace,
    run,
    async writeBytes(p, data) {
      let size = 0;
      async function* counted() {
        for await (const c of data) {
          size += c.length;
          yield c;
        }
      }
      const r = await spawnIn(shape, workspace, ['/bin/sh', '-c', 'cat > "$1"', 'w', p], counted(), () => undefined);
      if (r.exitCode !== 0) throw new Error(`writing ${p}: ${r.stderr.toString()}`);
      return size;
    },
    async readBytes(p, sink) {
      const r = await streamOutput(['cat', '--', p], sink);
      if (r.exitCode !== 0) throw new Error(`reading ${p}: ${r.stderr}`);
      return r.size;
    },
    ...(shape.streaming ? { streamOutput } : {}),
  };
}

for (const shape of shapes) {
  const id = `local-${shapes.indexOf(shape)}`;
  const workspace = path.join(root, id, 'ws');
  mkdirSync(workspace, { recursive: true });
  const transport = localTransport(shape, id, workspace);
  const fs = new TransportFileSystem(async () => transport);
  const run = async (script: string) => {
    const r = await transport.run(['/bin/sh', '-c', script]);
    expect(r.stderr, `stderr of: ${script}`).toBe('');
    return r;
  };

  fileSystemContract(`file layer (${shape.name})`, () => ({ fs, id, run }));

  describe(`file layer (${shape.name}): large listings`, () => {
    it('lists 3,000 long names (more than an exec result holds), sorted, limit and the size cap applied', async () => {
      await fs.makeDirectory(id, 'many', { parents: false });
      const long = 'n'.repeat(100);
      await run(`cd many && i=0; while [ $i -lt 3000 ]; do : > "${long}-$((10000 + i))"; i=$((i + 1)); done`);
      // ~190 bytes of JSON an entry: the first ~1,400 fit the 256 KiB a result may take through history.
      const all = await fs.listFiles(id, 'many', { limit: 10_000 });
      expect(all.truncated).toBe(true);
      expect(Buffer.byteLength(JSON.stringify(all))).toBeLessThanOrEqual(MAX_LISTING_RESULT_BYTES);
      expect(Buffer.byteLength(JSON.stringify(all))).toBeGreaterThan(MAX_LISTING_RESULT_BYTES - 1000);
      expect(all.entries.length).toBeGreaterThan(1000);
      expect(all.entries.map((e) => e.name)).toEqual(all.entries.map((_, i) => `${long}-${10000 + i}`));
      const some = await fs.listFiles(id, 'many', { limit: 10 });
      expect(some).toMatchObject({ truncated: true });
      expect(some.entries.map((e) => e.name)).toEqual(Array.from({ length: 10 }, (_, i) => `${long}-${10000 + i}`));
      // Short names (~85 bytes of JSON each): all 2,000 fit.
      await fs.makeDirectory(id, 'short', { parents: false });
      await run(`cd short && i=0; while [ $i -lt 2000 ]; do : > "$((10000 + i))"; i=$((i + 1)); done`);
      const short = await fs.listFiles(id, 'short', { limit: 10_000 });
      expect(short.truncated).toBe(false);
      expect(short.entries).toHaveLength(2000);
      // No temporary file left.
      expect((await run('ls -a /tmp | grep -c "^.hourglass-out" || true')).stdout).toBe('0\n');
    }, 60_000);

    it('lists 30,000 entries (more names than one command line may hold), limit applied', async () => {
      const dir = path.join(workspace, 'huge');
      mkdirSync(dir);
      // 30,000 names of 106 bytes: ~3.4 MB of arguments, past the usual 2 MB ARG_MAX.
      const long = 'h'.repeat(100);
      for (let i = 0; i < 30_000; i++) closeSync(openSync(path.join(dir, `${long}-${10000 + i}`), 'w'));
      try {
        const some = await fs.listFiles(id, 'huge', { limit: 1000 });
        expect(some.truncated).toBe(true);
        expect(some.entries).toHaveLength(1000);
        expect(some.entries[0]!.name).toBe(`${long}-10000`);
        expect(some.entries[999]!.name).toBe(`${long}-10999`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  });
}
