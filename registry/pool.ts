// The registry's connection pool.
import pg from 'pg';

// Timestamps stay ISO strings end to end; the API returns them as they are.
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (v) => new Date(v).toISOString());

export function createPool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 10 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', (err) => console.error('[registry] idle client error:', err.message));
  return pool;
}
