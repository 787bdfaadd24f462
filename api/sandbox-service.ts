// Sandbox operations over the Temporal client and the registry; the routes only map HTTP to these.
import { createHash, randomBytes } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type pg from 'pg';
import {
  countLiveSandboxes,
  getSandbox,
  listEvents,
  listExecs,
  listSandboxes,
  type ListFilter,
  type SandboxRow,
} from '../registry/sandboxes';
import {
  awaitReadyUpdate,
  destroySignal,
  execUpdate,
  getStatus,
  renewLeaseSignal,
  renewLeaseUpdate,
  startUpdate,
  stopUpdate,
} from '../workflows/messages';
import { forceDestroyWorkflow } from '../workflows/force-destroy';
import { reaperWorkflow, type ReaperReport } from '../workflows/reaper';
import { sandboxWorkflow } from '../workflows/sandbox';
import { SandboxDriver, SandboxExpiresAt, SandboxOwner, SandboxSession, SandboxState } from '../workflows/search-attributes';
import { ALLOWED_STATES, SANDBOX_STATES, invalidStateMessage, isAllowed, type Operation } from '../workflows/states';
import type { ExecInput, ExecOutput, JobSpec, RenewLeaseResult, SandboxRequest, SandboxStatus } from '../workflows/types';
import { ApiError, fromTemporal, notFound } from './errors';
import { resolveLimits, type LimitsPolicy } from './limits';
import type { CreateSandboxBody } from './schemas';
import type { SessionService } from './session-service';
import type { Principal } from './tokens';
import { sandboxWorkflowId } from '../workflows/ids';

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
}


/** Other owners' sandboxes do not exist for a non-admin caller: the same 404 as an unknown id. */
const canSee = (p: Principal, owner: string) => p.role === 'admin' || p.owner === owner;

export class SandboxService {
  constructor(
    private readonly client: Client,
    private readonly pool: pg.Pool,
    private readonly opts: SandboxServiceOptions,
    private readonly sessions?: SessionService,
  ) {}

  /** Creates this process has started and not yet seen RUNNING (or fail). */
  private launching = 0;

  /** Starts the sandbox workflow and (by default) waits until the sandbox is RUNNING or has failed. */
  async create(
    p: Principal,
    body: CreateSandboxBody & { job?: JobSpec },
    ctx: { idempotencyKey?: string } = {},
  ): Promise<{ created: boolean; sandbox: SandboxStatus }> {
    const driver = body.driver ?? this.opts.defaultDriver;
    if (!this.opts.drivers.includes(driver)) {
      throw new ApiError(400, 'invalid_argument', `driver: '${driver}' is not enabled; enabled drivers: ${this.opts.drivers.join(', ')}`);
    }
    const limits = resolveLimits(this.opts.limits, body.template, body.limits);
    const requestHash = hashOf({ ...body, driver });
    // Keys are per owner: the same key from another owner names another sandbox.
    const id = ctx.idempotencyKey ? sandboxIdForKey(p.owner, ctx.idempotencyKey) : newSandboxId();
    if (ctx.idempotencyKey) {
      const replay = await this.replay(p, id, requestHash);
      if (replay) return { created: false, sandbox: replay };
    }
    if (body.sessionId) await this.requireOpenSession(p, body.sessionId);
    await this.requireQuota(p);
    this.requireCapacity();
    const maxLifetimeSeconds = body.maxLifetimeSeconds ?? this.opts.defaultMaxLifetimeSeconds;
    if (body.ttlSeconds > maxLifetimeSeconds) {
      throw new ApiError(400, 'invalid_argument', `ttlSeconds: ${body.ttlSeconds} exceeds maxLifetimeSeconds ${maxLifetimeSeconds}`);
    }
    const request: SandboxRequest = {
      id,
      driver,
      template: body.template,
      ttlSeconds: body.ttlSeconds,
      maxLifetimeSeconds,
      labels: body.labels,
      sessionId: body.sessionId,
      owner: p.owner,
      limits,
      readyTimeoutSeconds: body.readyTimeoutSeconds ?? this.opts.readyTimeoutSeconds,
      job: body.job,
    };
    this.launching += 1;
    try {
      return { created: true, sandbox: await this.launch(request, { requestHash: ctx.idempotencyKey ? requestHash : undefined, wait: body.wait }) };
    } catch (err) {
      const replay = ctx.idempotencyKey && isAlreadyStarted(err) ? await this.replay(p, id, requestHash) : null;
      if (replay) return { created: false, sandbox: replay };
      throw err;
    } finally {
      this.launching -= 1;
    }
  }

  /**
   * Past what the workers can create at once, new creates are refused at once (429) instead of
   * queueing for seconds while they compete with the destroys and renewals of running leases
   * (those are never refused). Counted per API process: the creates it is waiting on.
   */
  private requireCapacity(): void {
    const max = this.opts.maxPendingCreates;
    if (!max || this.launching < max) return;
    throw new ApiError(
      429,
      'overloaded',
      `${this.launching} sandboxes are being created right now (at most ${max} at once, HOURGLASS_MAX_PENDING_CREATES); retry in a moment`,
      { pending: this.launching, max },
      1,
    );
  }

  /** Starts a sandbox workflow for a prepared request (used by create, jobs and sessions). */
  async launch(request: SandboxRequest, opts: { requestHash?: string; wait: boolean }): Promise<SandboxStatus> {
    const maxExpiresAt = new Date(Date.now() + request.maxLifetimeSeconds * 1000);
    const startOptions = {
      workflowId: sandboxWorkflowId(request.id),
      taskQueue: this.opts.taskQueue,
      args: [{ request }] as [{ request: SandboxRequest }],
      // With an Idempotency-Key, FAIL lets a concurrent duplicate fall back to the replay check
      // (same body → same sandbox, another body → 422); REJECT_DUPLICATE: a destroyed id never returns.
      workflowIdConflictPolicy: opts.requestHash ? ('FAIL' as const) : ('USE_EXISTING' as const),
      workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
      memo: {
        requestHash: opts.requestHash ?? null,
        // Enough to describe the sandbox before any worker has run it.
        labels: request.labels,
        maxExpiresAt: maxExpiresAt.toISOString(),
      },
      staticSummary: `sandbox ${request.id} of ${request.owner} on ${request.driver} (ttl ${request.ttlSeconds}s)`,
      typedSearchAttributes: [
        { key: SandboxState, value: 'REQUESTED' },
        { key: SandboxDriver, value: request.driver },
        { key: SandboxOwner, value: request.owner },
        // Until RUNNING, the latest it may live: the reaper catches a create that never ends.
        { key: SandboxExpiresAt, value: maxExpiresAt },
        ...(request.sessionId ? [{ key: SandboxSession, value: request.sessionId }] : []),
      ],
    };
    try {
      if (!opts.wait) {
        await this.client.workflow.start(sandboxWorkflow, startOptions);
        return requestedStatus(request);
      }
      const startWorkflowOperation = new WithStartWorkflowOperation(sandboxWorkflow, startOptions);
      const waitMs = (request.readyTimeoutSeconds + 60) * 1000;
      try {
        return await this.client.withDeadline(Date.now() + waitMs, () =>
          this.client.workflow.executeUpdateWithStart(awaitReadyUpdate, { startWorkflowOperation }),
        );
      } catch (err) {
        if (fromTemporal(err)) throw err;
        // The deadline passed (e.g. no worker yet): the sandbox exists; report where it is.
        await startWorkflowOperation.workflowHandle();
        return this.describe(request.id);
      }
    } catch (err) {
      throw fromTemporal(err) ?? err;
    }
  }

  /**
   * One owner cannot take the host from the others. Counted from the registry, so creates racing
   * each other may pass the limit by as many as are in flight at once.
   */
  private async requireQuota(p: Principal): Promise<void> {
    if (p.role === 'admin') return;
    const live = await countLiveSandboxes(this.pool, p.owner);
    const max = this.opts.maxSandboxesPerOwner;
    if (live >= max) {
      throw new ApiError(429, 'quota_exceeded', `${p.owner} already has ${live} live sandboxes (at most ${max}); destroy some first`, {
        owner: p.owner,
        live,
        max,
      });
    }
  }

  /** A sandbox joins only an ACTIVE session of its own owner (another owner's session does not exist). */
  private async requireOpenSession(p: Principal, sessionId: string): Promise<void> {
    const owner = await this.sessions?.ownerOf(sessionId);
    if (owner === undefined || owner.owner !== p.owner) {
      throw new ApiError(400, 'invalid_argument', `sessionId: session ${sessionId} does not exist`);
    }
    if (!owner.open) {
      throw new ApiError(409, 'invalid_state', `session ${sessionId} has ended; sandboxes can only join an ACTIVE session`, { sessionId });
    }
  }

  /** Destroys many sandboxes; every id gets its own result, failures included. */
  async bulkDestroy(
    p: Principal,
    req: { ids?: string[]; label?: readonly [string, string]; force: boolean; reason?: string },
    requestedBy: string,
  ) {
    const ids = new Set(req.ids ?? []);
    if (req.label) {
      let cursor: string | undefined;
      do {
        const page = await listSandboxes(this.pool, {
          owner: p.role === 'admin' ? undefined : p.owner,
          labels: { [req.label[0]]: req.label[1] },
          state: SANDBOX_STATES.filter((st) => st !== 'DESTROYED'),
          limit: 500,
          cursor,
        });
        page.items.forEach((s) => ids.add(s.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    }
    const items = await Promise.all(
      [...ids].map(async (id) => {
        try {
          const result = req.force
            ? await this.forceDestroy(p, id, req.reason, requestedBy)
            : await this.requestDestroy(p, id, req.reason, requestedBy);
          return { id, ok: true as const, state: result.state };
        } catch (err) {
          const e = err instanceof ApiError ? err : (fromTemporal(err) ?? new ApiError(500, 'internal', (err as Error).message));
          return { id, ok: false as const, error: { code: e.code, message: e.message } };
        }
      }),
    );
    return { count: items.length, failed: items.filter((i) => !i.ok).length, items };
  }

  /** Runs the reaper now and returns its report. */
  async prune(opts: { dryRun: boolean; olderThanSeconds?: number }, graceSeconds: number): Promise<ReaperReport> {
    return this.client
      .withDeadline(Date.now() + 600_000, () =>
        this.client.workflow.execute(reaperWorkflow, {
          workflowId: `reaper:manual:${Date.now()}-${randomBytes(3).toString('hex')}`,
          taskQueue: this.opts.taskQueue,
          args: [{ ...opts, graceSeconds }],
          staticSummary: `prune${opts.dryRun ? ' (dry run)' : ''}`,
        }),
      )
      .catch((err) => {
        throw fromTemporal(err) ?? err;
      });
  }

  /** Same Idempotency-Key: the same sandbox if the body matches, 422 if it does not. */
  private async replay(p: Principal, id: string, requestHash: string): Promise<SandboxStatus | null> {
    const replayed = await this.replayUnchecked(id, requestHash);
    // A key is per owner, but a sandbox from before owners existed may sit at the id it maps to.
    if (replayed && !canSee(p, replayed.owner)) {
      throw new ApiError(409, 'already_exists', 'Idempotency-Key names a sandbox you cannot see: use another key');
    }
    return replayed;
  }

  private async replayUnchecked(id: string, requestHash: string): Promise<SandboxStatus | null> {
    let memo: Record<string, unknown> | undefined;
    try {
      memo = (await this.handle(id).describe()).memo;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // Its workflow may be past retention while the registry still has the sandbox: a key names
      // one sandbox for good, so answer with that one rather than start a second under its id.
      return getSandbox(this.pool, id);
    }
    if (memo?.requestHash !== requestHash) {
      throw new ApiError(422, 'idempotency_conflict', 'Idempotency-Key was already used with a different request body', { sandboxId: id });
    }
    return this.describe(id);
  }

  /**
   * The live state from the workflow's query; the registry row when the workflow cannot answer.
   * `recorded`: the row, when the caller has just read it.
   */
  async describe(id: string, recorded?: SandboxRow | null): Promise<SandboxStatus> {
    recorded ??= await getSandbox(this.pool, id);
    // DESTROYED is final; a terminated run's query would still answer its last live state.
    if (recorded?.state === 'DESTROYED') return recorded;
    try {
      // The registry row names the owner (authorize() checks it): a run started before owners
      // existed carries the caller's old X-Hourglass-Actor in that field, which proves nothing.
      const live = await this.client.withDeadline(Date.now() + 3000, () => this.handle(id).query(getStatus));
      return { ...live, owner: recorded?.owner ?? live.owner ?? 'local' };
    } catch (err) {
      if (recorded) return recorded;
      if (err instanceof WorkflowNotFoundError) throw notFound(`sandbox ${id}`);
      // No worker to answer the query yet: the server still knows what was set at start.
      return this.fromSearchAttributes(id).catch(() => {
        throw fromTemporal(err) ?? err;
      });
    }
  }

  private async fromSearchAttributes(id: string): Promise<SandboxStatus> {
    const d = await this.handle(id).describe();
    const memo = (d.memo ?? {}) as { labels?: Record<string, string>; maxExpiresAt?: string };
    return {
      id,
      owner: d.typedSearchAttributes.get(SandboxOwner) ?? 'local',
      state: (d.typedSearchAttributes.get(SandboxState) ?? 'REQUESTED') as SandboxStatus['state'],
      driver: d.typedSearchAttributes.get(SandboxDriver) ?? 'unknown',
      labels: memo.labels ?? {},
      createdAt: d.startTime.toISOString(),
      maxExpiresAt: memo.maxExpiresAt ?? d.startTime.toISOString(),
    };
  }

  /** The sandbox as its owner (or an admin) sees it; 404 for anyone else. */
  async get(p: Principal, id: string): Promise<SandboxStatus> {
    const { row } = await this.authorize(p, id);
    return this.describe(id, row);
  }

  /** A non-admin lists only their own sandboxes; an admin lists every owner's, or one owner's. */
  list(p: Principal, filter: ListFilter) {
    return listSandboxes(this.pool, { ...filter, owner: p.role === 'admin' ? filter.owner : p.owner });
  }

  async events(p: Principal, id: string) {
    await this.authorize(p, id);
    return listEvents(this.pool, id);
  }

  async execs(p: Principal, id: string) {
    await this.authorize(p, id);
    return listExecs(this.pool, id);
  }

  async exec(p: Principal, id: string, input: ExecInput, updateId?: string): Promise<ExecOutput> {
    await this.authorize(p, id);
    const deadline = Date.now() + ((input.timeoutSeconds ?? 300) + 60) * 1000;
    // Update ids are per run: a key names one exec, never also a renewal.
    const options = { args: [input] as [ExecInput], updateId: updateId && `exec:${updateId}` };
    return this.call(id, 'exec', () => this.client.withDeadline(deadline, () => this.handle(id).executeUpdate(execUpdate, options)));
  }

  async renew(p: Principal, id: string, ttlSeconds: number, updateId?: string): Promise<RenewLeaseResult> {
    await this.authorize(p, id);
    return this.call(id, 'renewLease', () =>
      this.client.withDeadline(Date.now() + 30_000, () =>
        this.handle(id).executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds }], updateId: updateId && `renew:${updateId}` }),
      ),
    );
  }

  /** Renewal by signal: accepted even with no worker running; invalid renewals are ignored by the workflow. */
  async renewBySignal(p: Principal, id: string, ttlSeconds: number): Promise<void> {
    await this.requireState(p, id, 'renewLease');
    await this.call(id, 'renewLease', () => this.handle(id).signal(renewLeaseSignal, { ttlSeconds }));
  }

  async stop(p: Principal, id: string): Promise<SandboxStatus> {
    await this.authorize(p, id);
    return this.call(id, 'stop', () => this.client.withDeadline(Date.now() + 120_000, () => this.handle(id).executeUpdate(stopUpdate)));
  }

  async start(p: Principal, id: string): Promise<SandboxStatus> {
    await this.authorize(p, id);
    return this.call(id, 'start', () => this.client.withDeadline(Date.now() + 120_000, () => this.handle(id).executeUpdate(startUpdate)));
  }

  /** Asks the workflow to end the lease now; the destroy itself runs in the workflow's finally. */
  async requestDestroy(p: Principal, id: string, reason: string | undefined, requestedBy: string): Promise<SandboxStatus> {
    const current = await this.get(p, id);
    if (current.state === 'DESTROYING') return current;
    if (!isAllowed('destroy', current.state)) {
      throw new ApiError(409, 'invalid_state', `${invalidStateMessage('destroy', current.state)} (or pass force: true)`, {
        state: current.state,
        validStates: ALLOWED_STATES.destroy,
        force: true,
      });
    }
    // Who asked is always recorded: a reason given by the caller only adds to it.
    const why = reason ? `${reason} (destroy requested by ${requestedBy})` : undefined;
    await this.call(id, 'destroy', () => this.handle(id).signal(destroySignal, { reason: why, requestedBy }));
    return current;
  }

  /**
   * From any state: terminate the sandbox's workflow if it is open (its finally will not run),
   * then destroy the VM from a short workflow of its own and mark the row DESTROYED.
   */
  async forceDestroy(p: Principal, id: string, reason: string | undefined, requestedBy: string) {
    const { driver, owner } = await this.authorize(p, id);
    // Who asked is always recorded: a reason given by the caller only adds to it.
    const why = `force destroy by ${requestedBy}${reason ? `: ${reason}` : ''}`;
    try {
      await this.handle(id).terminate(why);
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError) && !isCompletedError(err)) throw fromTemporal(err) ?? err;
    }
    const { existed } = await this.call(id, 'destroy', () =>
      this.client.withDeadline(Date.now() + 120_000, () =>
        this.client.workflow.execute(forceDestroyWorkflow, {
          workflowId: `force-destroy:${id}`,
          taskQueue: this.opts.taskQueue,
          args: [{ id, driver, owner, reason: why }],
          workflowIdConflictPolicy: 'USE_EXISTING',
          staticSummary: `force destroy of sandbox ${id}: ${why}`,
        }),
      ),
    );
    return { id, state: 'DESTROYED' as const, destroyReason: why, vmExisted: existed };
  }

  /**
   * The sandbox's owner and driver, from its registry row or (before the first row is written)
   * its workflow's search attributes; 404 when it is unknown or another owner's.
   */
  private async authorize(p: Principal, id: string): Promise<{ owner: string; driver: string; row: SandboxRow | null }> {
    const row = await getSandbox(this.pool, id);
    let found: { owner: string; driver: string } | undefined = row ? { owner: row.owner, driver: row.driver } : undefined;
    // An unknown id costs a Temporal call (the row may not be written yet); so does another
    // owner's, so that the time of a 404 does not tell the two apart.
    if (!found || !canSee(p, found.owner)) {
      try {
        const attrs = (await this.handle(id).describe()).typedSearchAttributes;
        const driver = attrs.get(SandboxDriver);
        if (driver) found ??= { owner: attrs.get(SandboxOwner) ?? 'local', driver };
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw fromTemporal(err) ?? err;
      }
    }
    if (!found || !canSee(p, found.owner)) throw notFound(`sandbox ${id}`);
    return { ...found, row };
  }

  private async requireState(p: Principal, id: string, op: Operation): Promise<void> {
    const current = await this.get(p, id);
    if (!isAllowed(op, current.state)) {
      throw new ApiError(409, 'invalid_state', invalidStateMessage(op, current.state), { state: current.state });
    }
  }

  private handle(id: string): WorkflowHandle<typeof sandboxWorkflow> {
    return this.client.workflow.getHandle(sandboxWorkflowId(id));
  }

  /** Runs a workflow call; a closed (or unknown) workflow becomes a 409 naming the recorded state, or a 404. */
  private async call<T>(id: string, op: Operation, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || isCompletedError(err)) {
        const row = await getSandbox(this.pool, id);
        if (!row) throw notFound(`sandbox ${id}`);
        throw new ApiError(409, 'invalid_state', invalidStateMessage(op, row.state), { state: row.state });
      }
      throw fromTemporal(err) ?? err;
    }
  }
}

/** What a just-started sandbox looks like before its workflow has run (no worker needed). */
function requestedStatus(r: SandboxRequest): SandboxStatus {
  const now = Date.now();
  return {
    id: r.id,
    owner: r.owner,
    state: 'REQUESTED',
    driver: r.driver,
    template: r.template,
    labels: r.labels,
    sessionId: r.sessionId,
    createdAt: new Date(now).toISOString(),
    maxExpiresAt: new Date(now + r.maxLifetimeSeconds * 1000).toISOString(),
    job: r.job ? { state: 'QUEUED', steps: [] } : undefined,
  };
}

function isAlreadyStarted(err: unknown): boolean {
  return err instanceof WorkflowExecutionAlreadyStartedError || (err instanceof ApiError && err.code === 'already_exists');
}

function isCompletedError(err: unknown): boolean {
  return err instanceof Error && /already completed|workflow execution already/i.test(err.message);
}

function newSandboxId(): string {
  return `sbx-${randomBytes(8).toString('hex')}`;
}

/** The sandbox an Idempotency-Key names, per owner: the same key always names the same sandbox. */
export function sandboxIdForKey(owner: string, key: string): string {
  return `sbx-${createHash('sha256').update(`${owner}\0${key}`).digest('hex').slice(0, 16)}`;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
