// hourglass_registry_pool_clients: this process's registry connections at scrape time. `waiting`
// above zero for long means queries queue for a connection: the pool (HOURGLASS_REGISTRY_POOL_SIZE)
// is too small for the load, or PostgreSQL (or this process's event loop) too slow for it.
import type pg from 'pg';
import type { Gauge } from 'prom-client';

type PoolCounts = Pick<pg.Pool, 'totalCount' | 'idleCount' | 'waitingCount'>;

let watched: PoolCounts | undefined;

/** The pool the gauge reads (one per process). */
export function watchRegistryPool(pool: PoolCounts): void {
  watched = pool;
}

export function readRegistryPool(gauge: Gauge<'state'>): void {
  gauge.reset();
  if (!watched) return;
  gauge.set({ state: 'in_use' }, watched.totalCount - watched.idleCount);
  gauge.set({ state: 'idle' }, watched.idleCount);
  gauge.set({ state: 'waiting' }, watched.waitingCount);
}
