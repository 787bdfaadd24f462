// Per-owner caps of the data plane, so one tenant cannot take every exec slot of the workers or
// fill the registry with transfers: running streamed/background commands, and transfers in flight.
// Counted from the registry before starting (like the sandbox quota): requests racing each other
// may pass a cap by as many as arrive at once.
import type pg from 'pg';
import { ApiError } from './errors';

export const DEFAULT_MAX_RUNNING_EXECS_PER_OWNER = 64;
export const DEFAULT_MAX_TRANSFERS_PER_OWNER = 8;

/**
 * A transfer lives at most this long (an hour-long upload, then the worker's copy): an older row
 * is one a crash left for the reaper, and no longer counts against its owner.
 */
const TRANSFER_COUNTED_SECONDS = 2 * 3600;

export interface DataPlaneCaps {
  maxRunningExecsPerOwner?: number;
  maxTransfersPerOwner?: number;
}

/** Streamed and background commands of the owner's sandboxes that have not ended (migration 009's index). */
export async function countRunningExecs(pool: pg.Pool, owner: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM execs e JOIN sandboxes s ON s.id = e.sandbox_id
      WHERE e.finished_at IS NULL AND e.mode <> 'wait' AND s.owner = $1 AND s.state NOT IN ('DESTROYED', 'FAILED')`,
    [owner],
  );
  return rows[0]!.n;
}

export async function countTransfers(pool: pg.Pool, owner: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM transfers WHERE owner = $1 AND created_at > now() - make_interval(secs => $2)`,
    [owner, TRANSFER_COUNTED_SECONDS],
  );
  return rows[0]!.n;
}

/** 429 rate_limited once the owner runs as many streamed/background commands as it may. */
export async function requireExecSlot(pool: pg.Pool, caps: DataPlaneCaps, owner: string): Promise<void> {
  const max = caps.maxRunningExecsPerOwner ?? DEFAULT_MAX_RUNNING_EXECS_PER_OWNER;
  const running = await countRunningExecs(pool, owner);
  if (running < max) return;
  const message =
    `${owner} already runs ${running} streamed or background commands (at most ${max}, ` +
    'HOURGLASS_MAX_RUNNING_EXECS_PER_OWNER); wait for one to end or kill one';
  throw new ApiError(429, 'rate_limited', message, { cap: 'running_execs', owner, running, max }, 5);
}

/** 429 rate_limited once the owner has as many uploads and downloads under way as it may. */
export async function requireTransferSlot(pool: pg.Pool, caps: DataPlaneCaps, owner: string): Promise<void> {
  const max = caps.maxTransfersPerOwner ?? DEFAULT_MAX_TRANSFERS_PER_OWNER;
  const inFlight = await countTransfers(pool, owner);
  if (inFlight < max) return;
  const message =
    `${owner} already has ${inFlight} file transfers under way (at most ${max}, ` +
    'HOURGLASS_MAX_TRANSFERS_PER_OWNER); retry when one has finished';
  throw new ApiError(429, 'rate_limited', message, { cap: 'transfers', owner, inFlight, max }, 5);
}
