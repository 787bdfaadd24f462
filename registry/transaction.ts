// One transaction, written once: BEGIN, the work, COMMIT; ROLLBACK when the work throws.
import pg from 'pg';

/**
 * Runs `work` in a transaction on `db`. A pool lends a connection for it (released after); a
 * client, e.g. one holding an advisory lock, runs it itself. What `work` throws is rethrown after
 * the ROLLBACK.
 */
export async function inTransaction<T>(
  db: pg.Pool | pg.ClientBase,
  work: (tx: pg.ClientBase) => Promise<T>,
): Promise<T> {
  if (!(db instanceof pg.Pool)) return run(db, work);
  const client = await db.connect();
  try {
    return await run(client, work);
  } finally {
    client.release();
  }
}

async function run<T>(tx: pg.ClientBase, work: (tx: pg.ClientBase) => Promise<T>): Promise<T> {
  await tx.query('BEGIN');
  try {
    const result = await work(tx);
    await tx.query('COMMIT');
    return result;
  } catch (err) {
    // The work's error is the one to report: a ROLLBACK that fails only says the connection is gone.
    await tx.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
