// The sandbox operations the routes call, bound to one Temporal client, registry pool and set of
// operator settings. Each method is one line: the work is in the file it names.
import type { Client } from '@temporalio/client';
import type pg from 'pg';
import type { ListFilter } from '../../registry/sandboxes';
import type { ExecInput, JobSpec } from '../../workflows/types';
import { runReaperNow, type PruneRequest } from '../prune';
import type { CreateSandboxBody } from '../schemas';
import type { SessionService } from '../sessions/service';
import type { Principal } from '../tokens';
import type { SandboxContext, SandboxServiceOptions } from './context';
import { createSandbox } from './create';
import * as destroy from './destroy';
import * as ops from './ops';
import * as read from './read';

export class SandboxService {
  private readonly ctx: SandboxContext;

  constructor(client: Client, pool: pg.Pool, opts: SandboxServiceOptions, sessions?: SessionService) {
    this.ctx = { client, pool, opts, sessions, pending: { creates: 0 } };
  }

  /** What the data plane's routes (api/execs, api/files) work with: the same client, pool and settings. */
  get context(): SandboxContext {
    return this.ctx;
  }

  /** The registry pool (the event feed reads it; api/events). */
  get registryPool(): pg.Pool {
    return this.ctx.pool;
  }

  create(p: Principal, body: CreateSandboxBody & { job?: JobSpec }, req?: { idempotencyKey?: string }) {
    return createSandbox(this.ctx, p, body, req);
  }

  get(p: Principal, id: string) {
    return read.get(this.ctx, p, id);
  }

  list(p: Principal, filter: ListFilter) {
    return read.list(this.ctx, p, filter);
  }

  events(p: Principal, id: string) {
    return read.events(this.ctx, p, id);
  }

  execs(p: Principal, id: string) {
    return read.execs(this.ctx, p, id);
  }

  exec(p: Principal, id: string, input: ExecInput, updateId?: string) {
    return ops.exec(this.ctx, p, id, input, updateId);
  }

  renew(p: Principal, id: string, ttlSeconds: number, updateId?: string) {
    return ops.renew(this.ctx, p, id, ttlSeconds, updateId);
  }

  renewBySignal(p: Principal, id: string, ttlSeconds: number) {
    return ops.renewBySignal(this.ctx, p, id, ttlSeconds);
  }

  stop(p: Principal, id: string) {
    return ops.stop(this.ctx, p, id);
  }

  start(p: Principal, id: string) {
    return ops.start(this.ctx, p, id);
  }

  requestDestroy(p: Principal, id: string, reason: string | undefined, requestedBy: string) {
    return destroy.requestDestroy(this.ctx, p, id, reason, requestedBy);
  }

  forceDestroy(p: Principal, id: string, reason: string | undefined, requestedBy: string) {
    return destroy.forceDestroy(this.ctx, p, id, reason, requestedBy);
  }

  bulkDestroy(p: Principal, req: destroy.BulkDestroyRequest, requestedBy: string) {
    return destroy.bulkDestroy(this.ctx, p, req, requestedBy);
  }

  /** Runs the reaper now and returns its report (../prune.ts). */
  prune(req: PruneRequest, graceSeconds: number) {
    return runReaperNow(this.ctx.client, this.ctx.opts.taskQueue, req, graceSeconds);
  }
}
