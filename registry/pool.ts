// The registry's connection pool.
import pg from 'pg';
import { componentLogger } from '../log/logger';

const log = componentLogger('registry');

// Timestamps stay ISO strings end to end; the API returns them as they are.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v) => new Date(v).toISOString());

/** Connections per role a process hosts (the API, a worker), unless HOURGLASS_REGISTRY_POOL_SIZE says. */
export const POOL_SIZE_PER_ROLE = 10;

export function createPool(connectionString: string, max = POOL_SIZE_PER_ROLE): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  // A client losing its connection (PostgreSQL restarted or killed) emits 'error': with no
  // listener that event crashes the process. Idle clients are covered by the pool's 'error'; a
  // checked-out client only by a listener of its own, attached here for its whole life. The query
  // it was running fails by itself, and the pool replaces the broken client.
  pool.on('error', (err) => log.warn(`idle connection lost: ${err.message}`));
  pool.on('connect', (client) => client.on('error', (err) => log.warn(`connection lost: ${err.message}`)));
  return pool;
}
