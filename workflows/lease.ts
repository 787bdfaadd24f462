// Lease arithmetic, kept pure so the workflow reads like the state diagram.
import type { RenewLeaseResult } from './types';

export class Lease {
  constructor(
    readonly createdAt: number,
    public expiresAt: number,
    readonly maxLifetimeSeconds: number,
  ) {}

  static start(now: number, createdAt: number, ttlSeconds: number, maxLifetimeSeconds: number): Lease {
    const lease = new Lease(createdAt, now, maxLifetimeSeconds);
    lease.expiresAt = Math.min(now + ttlSeconds * 1000, lease.maxExpiresAt);
    return lease;
  }

  get maxExpiresAt(): number {
    return this.createdAt + this.maxLifetimeSeconds * 1000;
  }

  msLeft(now: number): number {
    return this.expiresAt - now;
  }

  /** Extend-only: a renewal never shortens the lease, and never passes maxLifetimeSeconds. */
  renew(id: string, now: number, ttlSeconds: number): RenewLeaseResult {
    const wanted = now + ttlSeconds * 1000;
    const next = Math.min(Math.max(this.expiresAt, wanted), this.maxExpiresAt);
    this.expiresAt = next;
    return { id, expiresAt: new Date(next).toISOString(), capped: wanted > this.maxExpiresAt };
  }
}

export function validateTtl(ttlSeconds: unknown): string | undefined {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    return `ttlSeconds must be a positive number (got ${JSON.stringify(ttlSeconds)})`;
  }
  return undefined;
}
