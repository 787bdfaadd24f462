// Lexical confinement of agents' paths to a sandbox's workspace (hypervisors/guest/sandbox-paths.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadSpecError } from '../../hypervisors/errors';
import { confinePath, MAX_PATH_BYTES } from '../../hypervisors/guest/sandbox-paths';

const confine = (p: string, ws = '/work') => confinePath('sb1', ws, p);
const refusal = (p: string, ws = '/work') => {
  try {
    confine(p, ws);
  } catch (err) {
    expect(err).toBeInstanceOf(BadSpecError);
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(p)} was accepted`);
};

describe('confinePath', () => {
  it('puts relative paths beneath the workspace, tidying . and //', () => {
    expect(confine('a.txt')).toBe('/work/a.txt');
    expect(confine('a//b/./c/')).toBe('/work/a/b/c');
    expect(confine('.')).toBe('/work');
    expect(confine('./')).toBe('/work');
    expect(confine('...')).toBe('/work/...'); // a name, not a parent
    expect(confine('..x/x..')).toBe('/work/..x/x..');
    expect(confine('-rf')).toBe('/work/-rf');
    expect(confine('new\nline')).toBe('/work/new\nline');
    expect(confine('x', '/root')).toBe('/root/x');
  });

  it('accepts absolute paths at or beneath the workspace', () => {
    expect(confine('/work')).toBe('/work');
    expect(confine('/work/')).toBe('/work');
    expect(confine('/work/a/b')).toBe('/work/a/b');
    expect(confine('//work//a')).toBe('/work/a');
    expect(confine('/root/.ssh', '/root')).toBe('/root/.ssh');
  });

  it('refuses absolute paths outside, naming the path and the workspace', () => {
    expect(refusal('/etc/passwd')).toBe(
      'sandbox sb1: path "/etc/passwd" is outside the workspace (paths stay in the workspace /work)',
    );
    for (const p of ['/', '/workspace', '/work-other/x', '/wor', '/tmp/work']) expect(refusal(p)).toMatch(/outside/);
  });

  it('refuses any .. segment, even one that would stay inside', () => {
    for (const p of ['..', '../x', 'a/..', 'a/../b', '/work/a/../b', '/work/..', 'a/b/../../..', '../work/x']) {
      expect(refusal(p)).toMatch(/has a "\.\." segment/);
    }
  });

  it('refuses empty, NUL and over-long paths', () => {
    expect(refusal('')).toMatch(/path "" is empty/);
    expect(refusal('a\0b')).toMatch(/path "a\\u0000b" contains a NUL byte/);
    expect(confine('x'.repeat(MAX_PATH_BYTES))).toBe(`/work/${'x'.repeat(MAX_PATH_BYTES)}`);
    const long = refusal('x'.repeat(MAX_PATH_BYTES + 1));
    expect(long).toMatch(/is 4097 bytes long, more than 4096/);
    expect(long.length).toBeLessThan(400); // the path is cut in the message
    expect(refusal('é'.repeat(2049))).toMatch(/is 4098 bytes long/); // bytes, not characters
  });

  it('never yields a path outside the workspace, whatever the input', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z./\0]{0,30}$/), (p) => {
        let out: string;
        try {
          out = confine(p);
        } catch (err) {
          expect(err).toBeInstanceOf(BadSpecError);
          return;
        }
        expect(out === '/work' || out.startsWith('/work/')).toBe(true);
        expect(out.split('/')).not.toContain('..');
        expect(out).not.toContain('//');
      }),
      { numRuns: 2000 },
    );
  });
});
