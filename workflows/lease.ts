// Lease arithmetic, kept pure so the workflow reads like the state diagram.
import type { RenewLeaseResult } from './types';

/**
 * A sandbox's lease exists from its first moment: until the guest is ready it runs to the max
 * lifetime (the latest the sandbox may live, so a boot that hangs still ends); once RUNNING, it
 * runs for the requested ttl, and renewals move its end, never past the max lifetime.
 */
export class Lease {
  /** When the sandbox ends unless renewed. */
  expiresAt: number;
  private begun: boolean;

  /** `expiresAt`: a lease already started (carried across continue-as-new). */
  constructor(
    readonly createdAt: number,
    readonly maxLifetimeSeconds: number,
    expiresAt?: number,
  ) {
    this.begun = expiresAt !== undefined;
    this.expiresAt = expiresAt ?? this.maxExpiresAt;
  }

  /** A lease that starts now. */
  static start(now: number, createdAt: number, ttlSeconds: number, maxLifetimeSeconds: number): Lease {
    const lease = new Lease(createdAt, maxLifetimeSeconds);
    lease.begin(now, ttlSeconds);
    return lease;
  }

  get maxExpiresAt(): number {
    return this.createdAt + this.maxLifetimeSeconds * 1000;
  }

  /** False until the sandbox first reaches RUNNING. */
  get started(): boolean {
    return this.begun;
  }

  /** The lease proper begins: `ttlSeconds` from now, within the max lifetime. */
  begin(now: number, ttlSeconds: number): void {
    this.expiresAt = Math.min(now + ttlSeconds * 1000, this.maxExpiresAt);
    this.begun = true;
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
