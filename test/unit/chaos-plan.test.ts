// The chaos run's pure parts (bench/chaos, bench/lib/prng.ts): a seed replays the same plan, the
// plan is what the options ask for, and the verdict counts every leak.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retryAllowanceMs } from '../../bench/chaos/measure';
import { DEFAULTS, countByKind, makePlan, temporalRestartTimes, victimsFor } from '../../bench/chaos/plan';
import { dist, problemsOf, type ChaosReport } from '../../bench/chaos/report';
import { diceFrom, mulberry32 } from '../../bench/lib/prng';

const planFor = (seed: number, sandboxes = 220, windowSeconds = 150) =>
  makePlan({ ...DEFAULTS, seed, sandboxes, creationWindowSeconds: windowSeconds }, diceFrom(mulberry32(seed)));

describe('mulberry32', () => {
  it('is the published generator: the same first draws for seed 42 as in every recorded run', () => {
    const next = mulberry32(42);
    expect([next(), next(), next()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });

  it('one seed, one sequence; floats in [0, 1)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const a = mulberry32(seed);
        const b = mulberry32(seed);
        for (let i = 0; i < 20; i++) {
          const x = a();
          expect(b()).toBe(x);
          expect(x >= 0 && x < 1).toBe(true);
        }
      }),
    );
  });

  it('dice: uniform in [a, b), int in [a, b] inclusive', () => {
    const dice = diceFrom(mulberry32(7));
    const ints = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const u = dice.uniform([2, 3]);
      expect(u >= 2 && u < 3).toBe(true);
      ints.add(dice.int([1, 3]));
    }
    expect([...ints].sort()).toEqual([1, 2, 3]);
  });
});

describe('makePlan', () => {
  it('a seed replays the same plan', () => {
    expect(planFor(1234)).toEqual(planFor(1234));
    expect(planFor(1234)).not.toEqual(planFor(1235));
  });

  it('plans exactly the sandboxes asked for, numbered, within the creation window', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 120 }), (seed, n) => {
        const plan = planFor(seed, n, 45);
        expect(plan.sandboxes.map((p) => p.n)).toEqual([...Array(n).keys()]);
        for (const p of plan.sandboxes) {
          expect(p.atMs >= 0 && p.atMs <= 45_000).toBe(true);
          if (p.kind === 'session') {
            expect(plan.sessions[p.session!]!.members).toContain(p);
            expect(p.ttl >= 8 && p.ttl <= 10).toBe(true);
          } else {
            expect(p.session).toBeUndefined();
            expect(p.ttl >= 3 && p.ttl <= 10).toBe(true);
          }
          const renews = p.kind === 'renew-update' || p.kind === 'renew-signal';
          expect(renews ? p.renewals >= 1 && p.renewals <= 2 : p.renewals === 0).toBe(true);
        }
        for (const s of plan.sessions) {
          expect(s.members.length >= 1 && s.members.length <= 4).toBe(true);
          for (const m of s.members) expect(m.atMs).toBe(s.atMs);
        }
      }),
    );
  });

  it('mixes every kind in a full-size run', () => {
    expect(Object.keys(countByKind(planFor(42))).sort()).toEqual([
      'destroy',
      'expire',
      'renew-signal',
      'renew-update',
      'session',
    ]);
  });
});

describe('what the monkey breaks', () => {
  it('Temporal restarts are evenly spaced inside the creation window', () => {
    const o = { ...DEFAULTS, creationWindowSeconds: 90, temporalRestarts: 2 };
    expect(temporalRestartTimes(o, 1_000)).toEqual([31_000, 61_000]);
    expect(temporalRestartTimes({ ...o, temporalRestarts: 0 }, 1_000)).toEqual([]);
  });

  it('kills the worker half the time, the API 30%, both 20%', () => {
    expect(victimsFor(0)).toEqual(['worker']);
    expect(victimsFor(0.4999)).toEqual(['worker']);
    expect(victimsFor(0.5)).toEqual(['api']);
    expect(victimsFor(0.7999)).toEqual(['api']);
    expect(victimsFor(0.8)).toEqual(['worker', 'api']);
  });
});

describe('the verdict', () => {
  const clean = {
    leaks: {
      liveVms: 0,
      leftoverDirs: [],
      liveHolders: 0,
      strayProcesses: [],
      rowsNotDestroyed: [],
      openSandboxWorkflows: 0,
      openSessionWorkflows: 0,
      foreignTouched: [],
    },
    exactlyOnce: { sandboxesWithoutDestroyedEvent: [], sandboxesWithSeveralDestroyedEvents: [], dirsRecreated: [] },
    timing: { calmOverBound: [], convergedSecondsAfterLastLease: 2.5 },
  } as unknown as ChaosReport;
  const withChange = (path: string, value: unknown): ChaosReport => {
    const r = structuredClone(clean) as unknown as Record<string, Record<string, unknown>>;
    const [group, field] = path.split('.') as [string, string];
    r[group]![field] = value;
    return r as unknown as ChaosReport;
  };

  it('a clean run has no problems', () => {
    expect(problemsOf(clean)).toEqual([]);
  });

  it.each([
    ['leaks.liveVms', 2, '2 sandboxes still live on the hypervisor'],
    ['leaks.leftoverDirs', ['sbx-1'], 'leftover sandbox directories: sbx-1'],
    ['leaks.liveHolders', 1, '1 holder processes alive'],
    ['leaks.strayProcesses', ['pid 9'], 'stray processes: pid 9'],
    ['leaks.rowsNotDestroyed', ['sbx-1 RUNNING'], 'registry rows not DESTROYED: sbx-1 RUNNING'],
    ['leaks.openSandboxWorkflows', 1, '1 sandbox workflows still open'],
    ['leaks.foreignTouched', ['disk.img changed'], 'foreign VM touched: disk.img changed'],
    ['exactlyOnce.sandboxesWithoutDestroyedEvent', ['sbx-1'], 'no DESTROYED event: sbx-1'],
    ['exactlyOnce.sandboxesWithSeveralDestroyedEvents', ['sbx-1: a | b'], 'several DESTROYED events: sbx-1: a | b'],
    [
      'exactlyOnce.dirsRecreated',
      ['sbx-1 (2 lives)'],
      'sandbox directories that came back after being removed: sbx-1 (2 lives)',
    ],
    [
      'timing.calmOverBound',
      [{ id: 'sbx-1', overshoot: 7.26, reason: 'lease expired', destroyFaults: 1 }],
      'overshoot bound broken outside outages: sbx-1 +7.3 s, 1 destroy faults (lease expired)',
    ],
    ['timing.convergedSecondsAfterLastLease', null, 'did not converge'],
  ])('%s fails the run', (path, value, problem) => {
    expect(problemsOf(withChange(path, value))).toEqual([problem]);
  });

  it('an open session workflow alone is not a leak (its sandboxes are what must be gone)', () => {
    expect(problemsOf(withChange('leaks.openSessionWorkflows', 1))).toEqual([]);
  });

  it("the bound's allowance: the destroy retry policy's intervals (0.5 s, ×1.5, at most 5 s) after each fault", () => {
    expect(retryAllowanceMs(0)).toBe(0);
    expect(retryAllowanceMs(1)).toBe(500);
    expect(retryAllowanceMs(3)).toBe(500 + 750 + 1125);
    expect(retryAllowanceMs(8) - retryAllowanceMs(7)).toBe(5000);
  });

  it('distributions are nearest-rank: every figure is a real sample', () => {
    expect(dist([])).toEqual({ n: 0 });
    expect(dist([3, 1, 2, 4])).toEqual({ n: 4, min: 1, p50: 2, p95: 4, max: 4 });
  });
});
