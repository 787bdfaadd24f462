// The data plane every driver keeps (Hypervisor.execStream and Hypervisor.fileSystem, hypervisors/types.ts),
// as one suite each driver runs from its own test file with its own setup. The tests share one
// sandbox and run in order: a VM boot costs seconds.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadSpecError, PathNotFoundError } from '../../hypervisors/errors';
import { EXEC_OUTPUT_CAP_BYTES, truncationMarker } from '../../hypervisors/guest/contract';
import { seededBytes } from '../../bench/lib/seeded-bytes';
import type {
  ExecResult,
  Hypervisor,
  SandboxFileSystem,
  SandboxSpec,
  StreamExecRequest,
} from '../../hypervisors/types';

export interface DataPlaneOptions {
  /** TCG guests: longer timeouts. */
  slow?: boolean;
  /** A sandbox id no other run uses (default: dp-<random>). */
  newId?: () => string;
  /** waitReady's bound (default 10 s, slow 90 s). */
  readyMs?: number;
  /** Added to the spec (limits; the workspace must hold 2 × 50 MiB). */
  spec?: Partial<SandboxSpec>;
  /** Runs after the suite, once the driver is closed. */
  cleanup?: () => Promise<void>;
  /** The big round trip's size (default 50 MiB; a driver whose every call is a process takes less). */
  roundTripBytes?: number;
}

const MiB = 1024 * 1024;

export { seededBytes };

async function* once(data: Buffer | string): AsyncIterable<Buffer> {
  yield Buffer.from(data);
}

export function dataPlaneContract(
  name: string,
  makeDriver: () => Hypervisor | Promise<Hypervisor>,
  opts: DataPlaneOptions = {},
): void {
  describe(`${name} driver: the data plane`, () => {
    const slow = opts.slow ?? false;
    const timeout = (ms: number) => (slow ? ms * 5 : ms);
    const id = opts.newId?.() ?? `dp-${randomBytes(4).toString('hex')}`;
    let hv: Hypervisor;
    const run = async (script: string) => {
      const r = await hv.exec(id, { command: ['sh', '-c', script], timeoutSeconds: 60 });
      expect(r.stderr, `stderr of: ${script}`).toBe('');
      return r;
    };
    /** An execStream whose output is collected, each chunk with the time it arrived. */
    const stream = async (req: StreamExecRequest) => {
      const chunks: { stream: 'stdout' | 'stderr'; data: Buffer; at: number }[] = [];
      const started = Date.now();
      const result: ExecResult = await hv.execStream(id, req, (s, data) => {
        expect(Buffer.isBuffer(data)).toBe(true);
        chunks.push({ stream: s, data: Buffer.from(data), at: Date.now() });
      });
      const joined = (s: 'stdout' | 'stderr') => Buffer.concat(chunks.filter((c) => c.stream === s).map((c) => c.data));
      return { result, chunks, started, ended: Date.now(), stdout: joined('stdout'), stderr: joined('stderr') };
    };

    beforeAll(async () => {
      hv = await makeDriver();
      await hv.create({ id, labels: { suite: 'data-plane' }, ...opts.spec });
      await hv.waitReady(id, opts.readyMs ?? (slow ? 90_000 : 10_000));
    }, timeout(180_000));
    afterAll(async () => {
      await hv?.destroy(id).catch(() => undefined);
      await hv?.close?.();
      await opts.cleanup?.();
    }, timeout(120_000));

    describe('streaming exec', () => {
      it(
        'hands 10,000 numbered lines to onOutput complete and in order; the result keeps its copy',
        async () => {
          const script = 'i=1; while [ $i -le 10000 ]; do echo "line $i"; i=$((i+1)); done';
          const s = await stream({ command: ['sh', '-c', script] });
          const expected = Array.from({ length: 10_000 }, (_, i) => `line ${i + 1}\n`).join('');
          expect(s.stdout.toString()).toBe(expected);
          expect(s.stderr.length).toBe(0);
          expect(s.result).toMatchObject({ exitCode: 0, stdout: expected, stderr: '', timedOut: false });
        },
        timeout(60_000),
      );

      it(
        'hands output over while the command runs, not at its end',
        async () => {
          const s = await stream({ command: ['sh', '-c', 'echo first; sleep 3; echo second'] });
          expect(s.stdout.toString()).toBe('first\nsecond\n');
          const first = s.chunks.find((c) => c.data.toString().startsWith('first'))!;
          expect(first.at - s.started).toBeLessThan(timeout(1_500));
          expect(s.ended - first.at).toBeGreaterThan(2_000);
          console.log(`${name}: first streamed byte ${first.at - s.started} ms after execStream was called`);
        },
        timeout(30_000),
      );

      it(
        'keeps stdout and stderr apart, each in order',
        async () => {
          const script = 'for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; exit 3';
          const s = await stream({ command: ['sh', '-c', script] });
          expect(s.stdout.toString()).toBe('out 1\nout 2\nout 3\n');
          expect(s.stderr.toString()).toBe('err 1\nerr 2\nerr 3\n');
          expect(s.result).toMatchObject({
            exitCode: 3,
            stdout: 'out 1\nout 2\nout 3\n',
            stderr: 'err 1\nerr 2\nerr 3\n',
          });
        },
        timeout(30_000),
      );

      it(
        'feeds stdin byte for byte and then closes it; no stdin is an empty one',
        async () => {
          const bytes = Buffer.concat([randomBytes(100_000), Buffer.from([0, 10, 13, 255])]);
          const s = await stream({ command: ['cat'], stdin: bytes });
          expect(s.result.exitCode).toBe(0);
          expect(s.stdout.equals(bytes)).toBe(true);
          const empty = await stream({ command: ['wc', '-c'], timeoutSeconds: 10 });
          expect(empty.result).toMatchObject({ exitCode: 0, timedOut: false });
          expect(empty.stdout.toString().trim()).toBe('0');
        },
        timeout(30_000),
      );

      it(
        'streams every byte past the cap; the result is cut with the marker',
        async () => {
          const s = await stream({ command: ['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" a'] });
          expect(s.stdout.length).toBe(300_000);
          expect(s.stdout.equals(Buffer.alloc(300_000, 'a'))).toBe(true);
          expect(s.result.stdout).toBe(
            'a'.repeat(EXEC_OUTPUT_CAP_BYTES) + truncationMarker(300_000 - EXEC_OUTPUT_CAP_BYTES),
          );
        },
        timeout(30_000),
      );

      it(
        'kills the command at its timeout mid-stream, after handing over what it printed',
        async () => {
          const s = await stream({ command: ['sh', '-c', 'echo started; sleep 60; echo finished'], timeoutSeconds: 2 });
          expect(s.result).toMatchObject({ exitCode: 124, timedOut: true });
          expect(s.stdout.toString()).toBe('started\n');
          expect(s.ended - s.started).toBeLessThan(timeout(10_000));
        },
        timeout(30_000),
      );

      it(
        'reports a signal as 128 + N',
        async () => {
          expect((await stream({ command: ['sh', '-c', 'kill -9 $$'] })).result.exitCode).toBe(137);
        },
        timeout(30_000),
      );
    });

    fileSystemContract(name, () => ({ fs: hv.fileSystem, id, run }), opts);
  });
}

/** What the file-system half of the contract needs: the files, a sandbox, and a way to run a script in it. */
export interface FileSystemUnderTest {
  fs: SandboxFileSystem;
  id: string;
  /** Runs `sh -c script` in the sandbox, in its workspace; fails the test on any stderr. */
  run: (script: string) => Promise<ExecResult>;
}

/**
 * The files half of the data plane, on its own: for a SandboxFileSystem over any transport (the
 * local shells of file-layer-shells.test.ts too). `under` is called once the suite runs.
 */
export function fileSystemContract(
  name: string,
  under: () => FileSystemUnderTest,
  opts: Pick<DataPlaneOptions, 'slow' | 'roundTripBytes'> = {},
): void {
  describe(`${name}: files`, () => {
    const timeout = (ms: number) => (opts.slow ? ms * 5 : ms);
    let fs: () => SandboxFileSystem;
    let id: string;
    let run: FileSystemUnderTest['run'];
    let ws: string;
    const readAll = async (p: string) => {
      const parts: Buffer[] = [];
      const r = await fs().readFile(id, p, async (c) => void parts.push(Buffer.from(c)));
      return { ...r, bytes: Buffer.concat(parts) };
    };
    const write = (p: string, data: Buffer | string, mode?: number) =>
      fs().writeFile(id, p, once(data), mode === undefined ? {} : { mode });
    beforeAll(async () => {
      const u = under();
      fs = () => u.fs;
      id = u.id;
      run = u.run;
      ws = await u.fs.workspaceOf(id);
    });

    describe('files', () => {
      it('has an absolute workspace', () => {
        expect(ws).toMatch(/^\/./);
      });

      it(
        'writes a file (mode default 644, or the one asked), reads it back, a command sees it',
        async () => {
          expect(await write('hello.txt', 'hello\n')).toEqual({ path: `${ws}/hello.txt`, size: 6 });
          expect((await run('cat hello.txt; stat -c %a hello.txt')).stdout).toBe('hello\n644\n');
          expect(await write(`${ws}/secret.txt`, 'psst', 0o600)).toEqual({ path: `${ws}/secret.txt`, size: 4 });
          expect((await run('stat -c %a secret.txt')).stdout).toBe('600\n');
          const r = await readAll('hello.txt');
          expect(r).toMatchObject({ path: `${ws}/hello.txt`, kind: 'file', size: 6 });
          expect(r.bytes.toString()).toBe('hello\n');
          // Replaced whole, and no temporary file left beside it.
          await write('hello.txt', 'bye');
          expect((await readAll('hello.txt')).bytes.toString()).toBe('bye');
          const names = (await fs().listFiles(id, '.', { limit: 1000 })).entries.map((e) => e.name);
          expect(names.filter((n) => n.includes('hourglass'))).toEqual([]);
          // An empty file.
          expect(await write('empty', '')).toEqual({ path: `${ws}/empty`, size: 0 });
          expect((await readAll('empty')).bytes.length).toBe(0);
        },
        timeout(30_000),
      );

      it(
        `round-trips ${(opts.roundTripBytes ?? 50 * MiB) / MiB} MiB with an identical sha256`,
        async () => {
          const size = opts.roundTripBytes ?? 50 * MiB;
          const source = seededBytes(`data-plane-${id}`, size);
          let t = Date.now();
          expect(await fs().writeFile(id, 'big.bin', source.chunks, {})).toEqual({ path: `${ws}/big.bin`, size });
          const upMs = Date.now() - t;
          const inside = await run('sha256sum big.bin');
          expect(inside.stdout.split(' ')[0]).toBe(source.sha256());
          const hash = createHash('sha256');
          let got = 0;
          t = Date.now();
          const r = await fs().readFile(id, 'big.bin', async (c) => {
            hash.update(c);
            got += c.length;
          });
          const downMs = Date.now() - t;
          expect(r).toMatchObject({ kind: 'file', size });
          expect(got).toBe(size);
          expect(hash.digest('hex')).toBe(source.sha256());
          const mbps = (ms: number) => (size / MiB / (ms / 1000)).toFixed(1);
          console.log(
            `${name}: ${size / MiB} MiB upload ${upMs} ms (${mbps(upMs)} MB/s), ` +
              `download ${downMs} ms (${mbps(downMs)} MB/s)`,
          );
          await fs().removeFile(id, 'big.bin', { recursive: false });
        },
        timeout(300_000),
      );

      it(
        'reads a directory as a tar archive (symlinks kept as links)',
        async () => {
          await fs().makeDirectory(id, 'tree/sub', { parents: true });
          await write('tree/a.txt', 'A');
          await write('tree/sub/b.bin', Buffer.from([0, 1, 2, 255]));
          await run('ln -s a.txt tree/link-to-a && ln -s /etc/passwd tree/link-out');
          const r = await readAll('tree');
          expect(r).toMatchObject({ path: `${ws}/tree`, kind: 'directory', size: r.bytes.length });
          const dir = mkdtempSync(path.join(os.tmpdir(), 'hg-dp-tar-'));
          try {
            writeFileSync(path.join(dir, 'tree.tar'), r.bytes);
            execFileSync('mkdir', [path.join(dir, 'x')]);
            execFileSync('tar', ['-xf', path.join(dir, 'tree.tar'), '-C', path.join(dir, 'x')]);
            expect(readFileSync(path.join(dir, 'x', 'a.txt'), 'utf8')).toBe('A');
            expect(readFileSync(path.join(dir, 'x', 'sub', 'b.bin'))).toEqual(Buffer.from([0, 1, 2, 255]));
            expect(readlinkSync(path.join(dir, 'x', 'link-to-a'))).toBe('a.txt');
            expect(readlinkSync(path.join(dir, 'x', 'link-out'))).toBe('/etc/passwd');
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
        timeout(60_000),
      );

      it(
        'lists a directory: sorted, typed, sized, with mode and mtime; odd names intact; limit',
        async () => {
          await fs().makeDirectory(id, 'list', { parents: false });
          await write('list/b.txt', '12345', 0o640);
          await fs().makeDirectory(id, 'list/a-dir', { parents: false });
          // Names with a newline, spaces, a leading dash and a quote, made by a command in the sandbox.
          await run(`cd list && ln -s b.txt c-link && touch "$(printf 'new\\nline')" ' sp ace ' -- "-dash'q"`);
          const { path: listed, entries, truncated } = await fs().listFiles(id, 'list', { limit: 100 });
          expect(listed).toBe(`${ws}/list`);
          expect(truncated).toBe(false);
          expect(entries.map((e) => e.name)).toEqual([' sp ace ', "-dash'q", 'a-dir', 'b.txt', 'c-link', 'new\nline']);
          const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
          expect(byName['b.txt']).toMatchObject({ type: 'file', size: 5, mode: '640' });
          expect(byName['a-dir']).toMatchObject({ type: 'directory' });
          expect(byName['c-link']).toMatchObject({ type: 'symlink' });
          expect(byName['new\nline']).toMatchObject({ type: 'file', size: 0 });
          const mtime = Date.parse(byName['b.txt']!.mtime);
          expect(new Date(mtime).toISOString()).toBe(byName['b.txt']!.mtime);
          expect(Math.abs(mtime - Date.now())).toBeLessThan(5 * 60_000); // guest clocks drift a little
          const two = await fs().listFiles(id, 'list', { limit: 2 });
          expect(two).toMatchObject({ truncated: true });
          expect(two.entries.map((e) => e.name)).toEqual([' sp ace ', "-dash'q"]);
          // The workspace itself, by default path '.'.
          expect((await fs().listFiles(id, '.', { limit: 1000 })).entries.map((e) => e.name)).toContain('list');
        },
        timeout(60_000),
      );

      it(
        'makes directories (parents on request) and removes files and trees',
        async () => {
          await expect(fs().makeDirectory(id, 'm/n/o', { parents: false })).rejects.toBeInstanceOf(PathNotFoundError);
          expect(await fs().makeDirectory(id, 'm/n/o', { parents: true })).toEqual({ path: `${ws}/m/n/o` });
          expect(await fs().makeDirectory(id, 'm/n/o', { parents: true })).toEqual({ path: `${ws}/m/n/o` });
          await write('m/n/o/f', 'x');
          await expect(fs().removeFile(id, 'm', { recursive: false })).rejects.toBeInstanceOf(BadSpecError);
          // A directory is not replaced by a file, nor a file by a directory; modes are permission bits.
          await expect(write('m/n', 'x')).rejects.toBeInstanceOf(BadSpecError);
          await expect(fs().makeDirectory(id, 'm/n/o/f', { parents: true })).rejects.toBeInstanceOf(BadSpecError);
          await expect(write('m/bad-mode', 'x', 0o10000)).rejects.toBeInstanceOf(BadSpecError);
          await write('m/run.sh', 'echo ran', 0o755);
          expect((await run('./m/run.sh')).stdout).toBe('ran\n');
          expect(await fs().removeFile(id, 'm/n/o/f', { recursive: false })).toEqual({ existed: true });
          expect(await fs().removeFile(id, 'm/n/o/f', { recursive: false })).toEqual({ existed: false });
          expect(await fs().removeFile(id, 'm', { recursive: true })).toEqual({ existed: true });
          expect((await run('ls -a')).stdout).not.toMatch(/^m$/m);
          await expect(fs().removeFile(id, '.', { recursive: true })).rejects.toBeInstanceOf(BadSpecError);
        },
        timeout(60_000),
      );

      it(
        'an upload whose bytes are not the ones sent never replaces the target, nor leaves a temporary file',
        async () => {
          await write('keep.txt', 'original');
          const expect9 = { size: 9, sha256: createHash('sha256').update('truncated').digest('hex') };
          const upload = (data: string) => fs().writeFile(id, 'keep.txt', once(data), { expect: expect9 });
          // Cut short (the same size or not), or longer than sent.
          for (const wrong of ['trunc', 'truncatex', 'truncated and more']) {
            await expect(upload(wrong), wrong).rejects.toThrow(
              expect.objectContaining({ code: 'bad_spec', message: expect.stringContaining('left as it was') }),
            );
            expect((await readAll('keep.txt')).bytes.toString()).toBe('original');
          }
          const names = (await fs().listFiles(id, '.', { limit: 1000 })).entries.map((e) => e.name);
          expect(names.filter((n) => n.includes('hourglass'))).toEqual([]);
          expect(await upload('truncated')).toEqual({ path: `${ws}/keep.txt`, size: 9 });
          expect((await readAll('keep.txt')).bytes.toString()).toBe('truncated');
        },
        timeout(60_000),
      );

      it(
        'refuses setuid and setgid modes',
        async () => {
          for (const mode of [0o4755, 0o2755, 0o6777]) {
            await expect(write('suid', 'x', mode)).rejects.toThrow(
              expect.objectContaining({ code: 'bad_spec', message: expect.stringContaining('setuid') }),
            );
          }
          expect((await run('[ -e suid ] || echo absent')).stdout).toBe('absent\n');
        },
        timeout(30_000),
      );

      it(
        'stops a read past maxBytes: too_large, and no byte past the cap handed on',
        async () => {
          await fs().makeDirectory(id, 'capped', { parents: false });
          await write('capped/sized.bin', randomBytes(300_000));
          for (const p of ['capped/sized.bin', 'capped']) {
            let got = 0;
            const reading = fs().readFile(id, p, async (c) => void (got += c.length), undefined, { maxBytes: 1000 });
            await expect(reading, p).rejects.toThrow(
              expect.objectContaining({ code: 'too_large', permanent: true, message: expect.stringContaining('1000') }),
            );
            expect(got).toBeLessThanOrEqual(1000);
          }
          expect((await readAll('capped/sized.bin')).size).toBe(300_000);
        },
        timeout(60_000),
      );

      it(
        'answers a path that does not exist with PathNotFoundError',
        async () => {
          await expect(readAll('no-such-file')).rejects.toBeInstanceOf(PathNotFoundError);
          await expect(fs().listFiles(id, 'no-such-dir', { limit: 10 })).rejects.toBeInstanceOf(PathNotFoundError);
          await expect(write('no-such-dir/f', 'x')).rejects.toBeInstanceOf(PathNotFoundError);
        },
        timeout(30_000),
      );
    });

    describe('path escapes', () => {
      /** Every operation on `p` refuses with BadSpecError. */
      const refusedEverywhere = async (p: string) => {
        const sink = async () => undefined;
        await expect(fs().readFile(id, p, sink), `readFile ${p}`).rejects.toBeInstanceOf(BadSpecError);
        await expect(write(p, 'pwned'), `writeFile ${p}`).rejects.toBeInstanceOf(BadSpecError);
        await expect(fs().listFiles(id, p, { limit: 10 }), `listFiles ${p}`).rejects.toBeInstanceOf(BadSpecError);
        await expect(fs().removeFile(id, p, { recursive: true }), `removeFile ${p}`).rejects.toBeInstanceOf(
          BadSpecError,
        );
        await expect(fs().makeDirectory(id, p, { parents: true }), `mkdir ${p}`).rejects.toBeInstanceOf(BadSpecError);
      };

      it(
        'refuses .., absolute paths outside, NUL, empty and over-long paths',
        async () => {
          for (const p of ['..', '../etc/passwd', 'a/../../etc/passwd', 'a/..', '/etc/passwd', '/', `${ws}-other/x`]) {
            await refusedEverywhere(p);
          }
          for (const p of ['', 'a\0b', 'x'.repeat(4097)]) await refusedEverywhere(p);
        },
        timeout(60_000),
      );

      it(
        'refuses a symlink to /etc/passwd or to / made inside the sandbox, and a symlinked parent',
        async () => {
          await run('ln -s /etc/passwd passwd-link && ln -s / root-link && ln -s /etc/nothing-here dangling-out');
          // Unique: the local shells' "sandbox" shares the host's /tmp.
          const outside = `/tmp/hg-outside-${randomBytes(4).toString('hex')}`;
          await run(`mkdir -p ${outside} && echo keep > ${outside}/f && ln -s ${outside} parent-link`);
          await refusedEverywhere('passwd-link');
          await refusedEverywhere('root-link');
          await refusedEverywhere('root-link/etc/passwd');
          await refusedEverywhere('root-link/etc/new-dir');
          await refusedEverywhere('dangling-out');
          await refusedEverywhere('parent-link/f');
          await refusedEverywhere('parent-link/new');
          await refusedEverywhere('parent-link');
          // Nothing reached the other side, and the links are still what the sandbox made.
          expect((await run(`ls ${outside}; cat ${outside}/f; rm -r ${outside}`)).stdout).toBe('f\nkeep\n');
          expect((await run('readlink passwd-link; readlink dangling-out')).stdout).toBe(
            '/etc/passwd\n/etc/nothing-here\n',
          );
          expect((await run('[ -e /etc/nothing-here ] || echo absent')).stdout).toBe('absent\n');
        },
        timeout(60_000),
      );

      it(
        'allows symlinks that stay inside the workspace',
        async () => {
          await write('target.txt', 'inside');
          await run(`ln -s target.txt rel-link && ln -s "${ws}/target.txt" abs-link && mkdir -p d && ln -s d d-link`);
          expect((await readAll('rel-link')).bytes.toString()).toBe('inside');
          expect((await readAll('abs-link')).bytes.toString()).toBe('inside');
          await write('d-link/through', 'via link');
          expect((await run('cat d/through')).stdout).toBe('via link');
        },
        timeout(60_000),
      );
    });
  });
}
