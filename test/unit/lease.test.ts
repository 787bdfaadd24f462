// The lease's arithmetic (workflows/lease.ts): how long a sandbox may live, and what a renewal does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Lease, validateTtl } from '../../workflows/lease';

const T0 = Date.parse('2030-01-01T00:00:00Z');

describe('Lease.start', () => {
  it('ends ttlSeconds from now', () => {
    const lease = Lease.start(T0 + 5_000, T0, 60, 3600);
    expect(lease.expiresAt).toBe(T0 + 65_000);
    expect(lease.msLeft(T0 + 5_000)).toBe(60_000);
  });

  it('never ends past createdAt + maxLifetimeSeconds', () => {
    const lease = Lease.start(T0 + 50_000, T0, 60, 100);
    expect(lease.maxExpiresAt).toBe(T0 + 100_000);
    expect(lease.expiresAt).toBe(T0 + 100_000);
  });
});

describe('Lease.renew', () => {
  it('extends to now + ttlSeconds and answers with the new end', () => {
    const lease = Lease.start(T0, T0, 60, 3600);
    const result = lease.renew('sbx-1', T0 + 30_000, 120);
    expect(result).toEqual({ id: 'sbx-1', expiresAt: new Date(T0 + 150_000).toISOString(), capped: false });
    expect(lease.expiresAt).toBe(T0 + 150_000);
  });

  it('never shortens the lease (a shorter ttl leaves it as it was, not capped)', () => {
    const lease = Lease.start(T0, T0, 600, 3600);
    const result = lease.renew('sbx-1', T0 + 1_000, 10);
    expect(lease.expiresAt).toBe(T0 + 600_000);
    expect(result).toEqual({ id: 'sbx-1', expiresAt: new Date(T0 + 600_000).toISOString(), capped: false });
  });

  it('stops at maxLifetimeSeconds and says it was capped', () => {
    const lease = Lease.start(T0, T0, 60, 100);
    const result = lease.renew('sbx-1', T0 + 50_000, 60);
    expect(lease.expiresAt).toBe(T0 + 100_000);
    expect(result.capped).toBe(true);
    expect(result.expiresAt).toBe(new Date(T0 + 100_000).toISOString());
  });

  it('reaching exactly the lifetime is not capped; asking past it is', () => {
    const exact = Lease.start(T0, T0, 60, 100);
    expect(exact.renew('sbx-1', T0 + 40_000, 60).capped).toBe(false);
    expect(exact.expiresAt).toBe(T0 + 100_000);
    expect(exact.renew('sbx-1', T0 + 40_001, 60).capped).toBe(true);
  });

  it('any sequence of renewals: the end only moves forward, stays within the lifetime, as answered', () => {
    const renewal = fc.record({
      afterMs: fc.integer({ min: 0, max: 120_000 }),
      ttl: fc.integer({ min: 1, max: 7200 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3600 }),
        fc.integer({ min: 1, max: 7200 }),
        fc.array(renewal, { maxLength: 20 }),
        (ttl, maxLifetime, renewals) => {
          const lease = Lease.start(T0, T0, ttl, maxLifetime);
          let now = T0;
          expect(lease.expiresAt).toBe(Math.min(T0 + ttl * 1000, lease.maxExpiresAt));
          for (const r of renewals) {
            now += r.afterMs;
            const before = lease.expiresAt;
            const result = lease.renew('sbx', now, r.ttl);
            const wanted = now + r.ttl * 1000;
            expect(lease.expiresAt).toBe(Math.min(Math.max(before, wanted), lease.maxExpiresAt));
            expect(lease.expiresAt).toBeGreaterThanOrEqual(before);
            expect(lease.expiresAt).toBeLessThanOrEqual(T0 + maxLifetime * 1000);
            expect(result.expiresAt).toBe(new Date(lease.expiresAt).toISOString());
            expect(result.capped).toBe(wanted > lease.maxExpiresAt);
          }
        },
      ),
    );
  });
});

describe('validateTtl', () => {
  it('accepts a positive number of seconds', () => {
    expect(validateTtl(1)).toBeUndefined();
    expect(validateTtl(0.5)).toBeUndefined();
  });

  it.each([[0], [-1], [Number.NaN], [Number.POSITIVE_INFINITY], ['60'], [undefined], [null]])(
    'refuses %j, quoting it',
    (ttl) => {
      expect(validateTtl(ttl)).toBe(`ttlSeconds must be a positive number (got ${JSON.stringify(ttl)})`);
    },
  );
});
