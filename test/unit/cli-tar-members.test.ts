// The CLI's check of a sandbox's tar before `cp --extract` unpacks it: hostile members are refused
// (crafted headers, as a hostile sandbox would write them), real archives of GNU tar and busybox
// tar (long names, links inside) pass.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UnsafeArchiveError, checkTarMembers } from '../../cli/tar-members';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hg-tar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Member {
  name: string;
  type?: string;
  link?: string;
  data?: Buffer | string;
}

/** One ustar header (and its data, padded) as a sandbox's tar could write it. */
function header(m: Member): Buffer {
  const h = Buffer.alloc(512);
  const data = Buffer.from(m.data ?? '');
  h.write(m.name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(m.type ?? '0', 156);
  h.write(m.link ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function pax(records: Record<string, string>): Buffer {
  const body = Object.entries(records)
    .map(([k, v]) => {
      const rest = ` ${k}=${v}\n`;
      let n = rest.length + 1;
      while (`${n}${rest}`.length !== n) n = `${n}${rest}`.length;
      return `${n}${rest}`;
    })
    .join('');
  return header({ name: 'PaxHeader', type: 'x', data: body });
}

let count = 0;
function archive(...parts: Buffer[]): string {
  const file = path.join(dir, `a${++count}.tar`);
  writeFileSync(file, Buffer.concat([...parts, Buffer.alloc(1024)]));
  return file;
}

describe('checkTarMembers', () => {
  it.each<[string, Buffer[], RegExp]>([
    ['an absolute name', [header({ name: '/etc/cron.d/x' })], /absolute path/],
    ['a .. segment', [header({ name: 'a/../../x' })], /\.\. segment/],
    ['a symlink pointing above', [header({ name: 'a/l', type: '2', link: '../../etc' })], /symlink .* outside/],
    ['an absolute symlink', [header({ name: 'l', type: '2', link: '/etc/passwd' })], /symlink .* outside/],
    ['a hard link out', [header({ name: 'h', type: '1', link: '../x' })], /hard link .* outside/],
    ['a hard link to an absolute path', [header({ name: 'h', type: '1', link: '/etc/shadow' })], /hard link/],
    [
      'a member below a symlink the archive made',
      [header({ name: 'd/l', type: '2', link: '..' }), header({ name: 'd/l/x', data: 'x' })],
      /below d\/l, a symlink/,
    ],
    ['a character device', [header({ name: 'dev', type: '3' })], /member type/],
    [
      'a GNU long name with ..',
      [header({ name: '././@LongLink', type: 'L', data: '../../x\0' }), header({ name: 'x' })],
      /\.\./,
    ],
    ['a pax path out', [pax({ path: '/tmp/evil' }), header({ name: 'harmless' })], /absolute path/],
    ['a pax linkpath out', [pax({ linkpath: '../../..' }), header({ name: 'l', type: '2', link: 'ok' })], /outside/],
  ])('refuses %s', async (_what, parts, message) => {
    const err = await checkTarMembers(archive(...parts)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect((err as Error).message).toMatch(message);
  });

  it('passes links that stay inside, and a long name in a pax record', async () => {
    const ok = archive(
      header({ name: 'a/file.txt', data: 'hello' }),
      header({ name: 'a/b/up', type: '2', link: '../file.txt' }),
      header({ name: 'a/same', type: '1', link: 'a/file.txt' }),
      pax({ path: `a/${'n'.repeat(150)}` }),
      header({ name: 'a/short', data: 'x'.repeat(600) }),
      header({ name: 'a/dir/', type: '5' }),
    );
    expect(await checkTarMembers(ok)).toBe(5);
  });

  it.each(['tar', 'busybox'])('passes what %s makes of a directory with long names and links', async (tool) => {
    const src = mkdtempSync(path.join(dir, 'src-'));
    const deep = path.join(src, 'x'.repeat(120), 'y'.repeat(120));
    mkdirSync(deep, { recursive: true });
    writeFileSync(path.join(deep, 'f'), 'f');
    symlinkSync(path.join('x'.repeat(120), 'y'.repeat(120)), path.join(src, 'inside'));
    linkSync(path.join(deep, 'f'), path.join(src, 'hard'));
    const out = path.join(dir, `${tool}.tar`);
    const args = ['-c', '-f', out, '-C', src, '.'];
    execFileSync(tool, tool === 'busybox' ? ['tar', ...args] : args);
    expect(await checkTarMembers(out)).toBeGreaterThanOrEqual(5);
  });
});
