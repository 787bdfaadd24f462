// What a chaos run does and what it breaks, drawn from one seed: the sandboxes and sessions it
// creates (when, how long, renewed/destroyed/in a session), and the knobs of the chaos monkey.
import type { Dice } from '../lib/prng';

export interface ChaosOptions {
  sandboxes: number;
  /** creations are spread over this many seconds */
  creationWindowSeconds: number;
  ttlSeconds: [number, number];
  /** seconds between two chaos events (uniform) */
  chaosEverySeconds: [number, number];
  /** how long a killed service stays down before it is started again (uniform) */
  pauseSeconds: [number, number];
  temporalRestarts: number;
  faultRate: number;
  reaperIntervalSeconds: number;
  reaperGraceSeconds: number;
  /** the promise: gone within expiresAt + this, outside outages */
  overshootBoundSeconds: number;
  /** after a worker/Temporal outage ends, leases ending this much later still count as disturbed */
  recoveryMarginSeconds: number;
  seed: number;
  keep: boolean;
  log: (m: string) => void;
}

export const DEFAULTS: ChaosOptions = {
  sandboxes: 220,
  creationWindowSeconds: 150,
  ttlSeconds: [3, 10],
  chaosEverySeconds: [16, 26],
  pauseSeconds: [0.5, 2],
  temporalRestarts: 1,
  faultRate: 0.2,
  reaperIntervalSeconds: 5,
  reaperGraceSeconds: 2,
  overshootBoundSeconds: 5,
  recoveryMarginSeconds: 10,
  seed: Date.now() % 1_000_000,
  keep: false,
  log: (m) => console.log(`[chaos ${new Date().toISOString().slice(11, 23)}] ${m}`),
};

export type Kind = 'expire' | 'renew-update' | 'renew-signal' | 'destroy' | 'session';

export interface PlannedSandbox {
  n: number;
  kind: Kind;
  ttl: number;
  wait: boolean;
  renewals: number;
  /** ms after the services are up */
  atMs: number;
  /** index into ChaosPlan.sessions */
  session?: number;
}

export interface PlannedSession {
  atMs: number;
  heartbeatTimeout: number;
  /** deleted through the API, or left to lapse once its heartbeats stop */
  end: 'delete' | 'lapse';
  heartbeats: number;
  members: PlannedSandbox[];
}

export interface ChaosPlan {
  sandboxes: PlannedSandbox[];
  sessions: PlannedSession[];
}

/**
 * The workload: about 10% sessions of 2–4 sandboxes, the rest 45% left to expire, 15% renewed by
 * update, 15% by signal, 25% destroyed by request. Draws come first from the dice, so a seed
 * replays the same plan.
 */
export function makePlan(o: ChaosOptions, dice: Dice): ChaosPlan {
  const { next, int, uniform } = dice;
  const sandboxes: PlannedSandbox[] = [];
  const sessions: PlannedSession[] = [];
  const windowMs = o.creationWindowSeconds * 1000;
  let n = 0;
  while (n < o.sandboxes) {
    const roll = next();
    const atMs = uniform([0, windowMs]);
    if (roll < 0.1) {
      const s: PlannedSession = {
        atMs,
        heartbeatTimeout: int([4, 7]),
        end: next() < 0.5 ? 'delete' : 'lapse',
        heartbeats: int([0, 2]),
        members: [],
      };
      const k = Math.min(int([2, 4]), o.sandboxes - n);
      for (let i = 0; i < k; i++) {
        const ttl = int([8, Math.max(8, o.ttlSeconds[1])]);
        const wait = next() < 0.5;
        const p: PlannedSandbox = { n: n++, kind: 'session', ttl, wait, renewals: 0, atMs, session: sessions.length };
        sandboxes.push(p);
        s.members.push(p);
      }
      sessions.push(s);
      continue;
    }
    const kind: Kind = roll < 0.45 ? 'expire' : roll < 0.6 ? 'renew-update' : roll < 0.75 ? 'renew-signal' : 'destroy';
    const ttl = int(o.ttlSeconds);
    const wait = next() < 0.5;
    sandboxes.push({ n: n++, kind, ttl, wait, renewals: kind.startsWith('renew') ? int([1, 2]) : 0, atMs });
  }
  return { sandboxes, sessions };
}

export function countByKind(plan: ChaosPlan): Record<string, number> {
  const byKind: Record<string, number> = {};
  for (const p of plan.sandboxes) byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
  return byKind;
}

// --- what to break ------------------------------------------------------------------------------

/** Temporal restarts are evenly spaced over the creation window (ms since epoch). */
export function temporalRestartTimes(o: ChaosOptions, startedMs: number): number[] {
  const windowMs = o.creationWindowSeconds * 1000;
  const every = windowMs / (o.temporalRestarts + 1);
  return Array.from({ length: o.temporalRestarts }, (_, i) => startedMs + (i + 1) * every);
}

/** Otherwise the monkey SIGKILLs the worker (50%), the API (30%) or both (20%). */
export function victimsFor(roll: number): ('worker' | 'api')[] {
  return roll < 0.5 ? ['worker'] : roll < 0.8 ? ['api'] : ['worker', 'api'];
}
