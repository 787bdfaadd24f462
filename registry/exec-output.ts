// A streamed or background command's output, as the data plane keeps it (migration 007): chunks in
// the order the driver read them, seq from 1 per exec, so any API process can follow or resume.
import type pg from 'pg';

/** NOTIFY channel: `<sandboxId> <execId>` at the commit of new output or of the exec's end. */
export const EXEC_OUTPUT_CHANNEL = 'exec_output';

export type OutputStreamName = 'stdout' | 'stderr' | 'notice';

export interface OutputChunk {
  seq: number;
  stream: OutputStreamName;
  data: Buffer;
}

/** Appends chunks (a retried flush rewrites nothing) and wakes followers when they commit. */
export async function appendOutput(
  pool: pg.Pool,
  sandboxId: string,
  execId: string,
  chunks: OutputChunk[],
): Promise<void> {
  if (chunks.length === 0) return;
  await pool.query(
    `WITH added AS (
       INSERT INTO exec_output (sandbox_id, exec_id, seq, stream, data)
       SELECT $1, $2, c.seq, c.stream, c.data FROM unnest($3::int[], $4::text[], $5::bytea[]) AS c(seq, stream, data)
       ON CONFLICT DO NOTHING RETURNING 1)
     SELECT pg_notify($6, $1 || ' ' || $2)`,
    [
      sandboxId,
      execId,
      chunks.map((c) => c.seq),
      chunks.map((c) => c.stream),
      chunks.map((c) => c.data),
      EXEC_OUTPUT_CHANNEL,
    ],
  );
}

/** Chunks after `afterSeq`, oldest first. */
export async function readOutput(
  pool: pg.Pool,
  sandboxId: string,
  execId: string,
  afterSeq: number,
  limit: number,
): Promise<OutputChunk[]> {
  const { rows } = await pool.query<OutputChunk>(
    `SELECT seq, stream, data FROM exec_output
      WHERE sandbox_id = $1 AND exec_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
    [sandboxId, execId, afterSeq, limit],
  );
  return rows;
}

/** Output of sandboxes destroyed more than `olderThanSeconds` ago: nobody can follow it any more. */
export async function deleteOutputOfDestroyed(pool: pg.Pool, olderThanSeconds: number): Promise<number> {
  const { rowCount } = await pool.query(
    `DELETE FROM exec_output o USING sandboxes s
      WHERE s.id = o.sandbox_id AND s.state = 'DESTROYED' AND s.updated_at < now() - make_interval(secs => $1)`,
    [olderThanSeconds],
  );
  return rowCount ?? 0;
}
