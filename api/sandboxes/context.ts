// What every sandbox operation works with: the Temporal client, the registry, the operator's settings.
import type { Client } from '@temporalio/client';
import type pg from 'pg';
import type { LimitsPolicy } from '../limits';
import type { SessionService } from '../sessions/service';

export interface SandboxServiceOptions {
  taskQueue: string;
  drivers: string[];
  defaultDriver: string;
  defaultMaxLifetimeSeconds: number;
  readyTimeoutSeconds: number;
  limits: LimitsPolicy;
  /** Live (not DESTROYED) sandboxes one `user` owner may have; admins are not counted. */
  maxSandboxesPerOwner: number;
  /** Creates under way at once before new ones get 429 (0: no limit). */
  maxPendingCreates?: number;
  /** Streamed/background commands one owner may have running (HOURGLASS_MAX_RUNNING_EXECS_PER_OWNER; default 64). */
  maxRunningExecsPerOwner?: number;
  /** Uploads and downloads one owner may have under way (HOURGLASS_MAX_TRANSFERS_PER_OWNER; default 8). */
  maxTransfersPerOwner?: number;
}

export interface SandboxContext {
  client: Client;
  pool: pg.Pool;
  opts: SandboxServiceOptions;
  /** Tells whether a session is open for a sandbox to join. */
  sessions?: SessionService;
  /** Creates this process has started and not yet seen RUNNING (or fail). */
  pending: { creates: number };
}
