// Idempotency-Key on create (api/sandboxes/idempotency.ts): the sandbox id a key names, and the
// request hash a replay is compared by. Both are stored (the id in Temporal and the registry, the
// hash in the workflow's memo), so both must stay the same across versions.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { requestHash, sandboxIdForKey } from '../../api/sandboxes/idempotency';
import { ID_PATTERN } from '../../api/schemas';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The same JSON value with every object's keys in reverse order. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reversedKeys(x)]),
    );
  }
  return v;
}

describe('sandboxIdForKey', () => {
  it('is sbx- and the first 16 hex digits of sha256(owner NUL key), as it always was', () => {
    expect(sandboxIdForKey('local', 'chaos-1')).toBe(`sbx-${sha256('local\0chaos-1').slice(0, 16)}`);
    expect(sandboxIdForKey('local', 'k')).toBe('sbx-93587c0631c2f84f');
  });

  it('the same owner and key always name the same sandbox, a valid sandbox id', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1, maxLength: 200 }), (owner, key) => {
        const id = sandboxIdForKey(owner, key);
        expect(id).toMatch(/^sbx-[0-9a-f]{16}$/);
        expect(ID_PATTERN.test(id)).toBe(true);
        expect(sandboxIdForKey(owner, key)).toBe(id);
      }),
    );
  });

  it('a key is per owner: two owners using one key name two sandboxes', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,12}$/), { minLength: 2, maxLength: 2 }),
        fc.string(),
        ([a, b], key) => {
          expect(sandboxIdForKey(a!, key)).not.toBe(sandboxIdForKey(b!, key));
        },
      ),
    );
  });
});

describe('requestHash', () => {
  it('is sha256 of the body as canonical JSON: keys sorted, undefined fields left out', () => {
    const body = { wait: true, ttlSeconds: 60, labels: { b: '2', a: '1' }, driver: 'process', template: undefined };
    expect(requestHash(body)).toBe(
      sha256('{"driver":"process","labels":{"a":"1","b":"2"},"ttlSeconds":60,"wait":true}'),
    );
  });

  it('ignores key order, at any depth', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => requestHash(reversedKeys(v)) === requestHash(v)));
  });

  it('ignores undefined fields, which JSON cannot carry', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), (body, extra) => {
        fc.pre(!(extra in body));
        expect(requestHash({ ...body, [extra]: undefined })).toBe(requestHash(body));
      }),
    );
  });

  it('tells different bodies apart: another value, another type, another array order, one field more', () => {
    const base = { ttlSeconds: 60, labels: { a: '1' }, limits: { cpus: 1 } };
    const hashes = [
      base,
      { ...base, ttlSeconds: 61 },
      { ...base, ttlSeconds: '60' },
      { ...base, labels: { a: '1', b: '' } },
      { ...base, labels: {} },
      { ...base, limits: { cpus: 1, memoryMiB: 512 } },
      { ...base, wait: false },
      { ...base, wait: null },
      { command: ['a', 'b'] },
      { command: ['b', 'a'] },
      { command: ['ab'] },
    ].map(requestHash);
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it('two JSON values have the same hash exactly when they are the same value (key order aside)', () => {
    const canonical = (v: unknown): string => JSON.stringify(v, (_k, x) => sortedObject(x));
    const pair = fc
      .jsonValue()
      .chain((a) => fc.tuple(fc.constant(a), fc.oneof(fc.constant(reversedKeys(a)), fc.jsonValue())));
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(requestHash(a) === requestHash(b)).toBe(canonical(a) === canonical(b));
      }),
    );
  });
});

function sortedObject(x: unknown): unknown {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return x;
  return Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
