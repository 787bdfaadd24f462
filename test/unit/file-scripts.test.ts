// The parsing of the listing script's output (hypervisors/guest/file-scripts.ts): names are
// NUL-terminated so any byte but NUL survives; anything else the script never prints is refused.
import { describe, expect, it } from 'vitest';
import { parseListing } from '../../hypervisors/guest/file-scripts';

const listing = (...groups: { names: string[]; stats: string[] }[]) =>
  Buffer.concat(
    groups.map((g) =>
      Buffer.concat([
        Buffer.from(`${g.names.length}\n`),
        ...g.names.map((n) => Buffer.concat([Buffer.from(n, 'latin1'), Buffer.from([0])])),
        Buffer.from(g.stats.map((s) => `${s}\n`).join('')),
      ]),
    ),
  );

describe('parseListing', () => {
  it('reads each glob group: names (newlines, spaces, odd bytes) then one stat line each', () => {
    const out = listing(
      { names: ['a b', 'new\nline'], stats: ['81a4 5 1700000000', '41ed 4096 1700000001'] },
      { names: ['.hidden\xff'], stats: ['a1ff 3 1700000002'] },
    );
    const entries = parseListing(out);
    expect(entries.map((e) => e.name.toString('latin1'))).toEqual(['a b', 'new\nline', '.hidden\xff']);
    expect(entries.map((e) => [e.mode, e.size, e.mtimeSeconds])).toEqual([
      [0o100644, 5, 1700000000],
      [0o040755, 4096, 1700000001],
      [0o120777, 3, 1700000002],
    ]);
  });

  it('reads an empty directory as no entries', () => {
    expect(parseListing(Buffer.alloc(0))).toEqual([]);
  });

  it('refuses output the script never prints', () => {
    expect(() => parseListing(Buffer.from('2\na\0'))).toThrow(/cut short/);
    expect(() => parseListing(Buffer.from('x\n'))).toThrow(/bad entry count/);
    expect(() => parseListing(listing({ names: ['a'], stats: ['zz 1'] }))).toThrow(/bad stat line for "a"/);
  });
});
