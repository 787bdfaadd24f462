// One run of the sandbox workflow: its state, the moves between states, and what each message
// does. workflows/sandbox.ts installs the handlers and drives the life; the parts are beside this file.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
} from '@temporalio/workflow';
import { createFailed as createFailedReason, EndReason } from '../end-reasons';
import { Failure, failureType } from '../failures';
import { sessionWorkflowId } from '../ids';
import { Lease, validateTtl } from '../lease';
import { sandboxJoinedSignal } from '../messages';
import { canTransition, invalidStateMessage, isAllowed, type Operation, type SandboxState } from '../states';
import { createSummary } from '../summaries';
import type {
  DestroyRequest,
  ExecInput,
  ExecOutput,
  FileOp,
  FileOpResult,
  JobStatus,
  KillExecResult,
  RenewLeaseInput,
  RenewLeaseResult,
  SandboxInput,
  SandboxLimits,
  SandboxRequest,
  SandboxResult,
  SandboxStatus,
} from '../types';
import { bootWait, provisioning, teardown, teardownHere } from './activity-options';
import {
  drainingMessage,
  exec,
  killExec,
  settleAfterDestroy,
  startExec,
  validateCommand,
  validateKillExec,
} from './exec-handlers';
import { runFileOp, validateFileOp } from './files';
import { Mutex } from './mutex';
import { Publisher } from './publish';
import { rootMessage } from './root-cause';
import { RunningExecs } from './running-execs';

const PROVISIONING_STATES: readonly SandboxState[] = ['REQUESTED', 'PROVISIONING', 'BOOTING'];

export class SandboxRun {
  readonly id: string;
  readonly request: SandboxRequest;
  readonly createdAt: number;
  readonly lease: Lease;
  state: SandboxState;
  isolation?: string;
  limits?: SandboxLimits;
  readonly job?: JobStatus;
  /** Set once the sandbox is to go; the first reason wins. */
  destroyReason?: string;
  /** The same, as one of a few fixed words (workflows/end-reasons.ts): the SandboxEndReason search attribute. */
  endReason?: string;
  /** Whether the UI's upserts carry the end reason (patched 'end-reason-search-attribute-v1'). */
  showEndReason = false;
  /** A permanent create/boot error, or what the reaper said of a lost VM. */
  private failure?: string;
  private failureCode?: string;
  /** History nears its limit: new execs, stops and starts wait for the rollover. */
  draining = false;
  /** Bumped by every change the lease loop must look at again. */
  wakeups = 0;
  /** Records the lean way (patched 'lean-history-v1'); runs started before replay the old way. */
  readonly lean: boolean;
  readonly publish: Publisher;
  /** Cancelled by a destroy that arrives while the sandbox is being made. */
  private readonly provisioningScope = new CancellationScope();
  /** Stop and start each call the driver, then move the state: one at a time. */
  private readonly stopStart = new Mutex();
  /** Streamed and background commands under way (killable). */
  readonly execs = new RunningExecs();
  /** File operations under way: a destroy cancels them once the VM is gone. */
  readonly fileOps = new Set<CancellationScope>();

  constructor({ request, carried }: SandboxInput) {
    this.id = request.id;
    this.request = request;
    this.state = carried?.state ?? 'REQUESTED';
    this.isolation = carried?.isolation;
    this.limits = carried?.limits;
    this.createdAt = carried?.createdAt ?? Date.now();
    this.lease = new Lease(this.createdAt, request.maxLifetimeSeconds, carried?.expiresAt);
    this.job = carried ? carried.job : request.job ? { state: 'QUEUED', steps: [] } : undefined;
    // Runs started before the history was made lean replay the old way: one activity per
    // transition, an upsert per change, a lease timer restarted by every renewal.
    this.lean = patched('lean-history-v1');
    this.publish = new Publisher(this, carried?.seq ?? 0);
  }

  status(): SandboxStatus {
    return {
      id: this.id,
      owner: this.request.owner,
      state: this.state,
      driver: this.request.driver,
      template: this.request.template,
      labels: this.request.labels,
      sessionId: this.request.sessionId,
      isolation: this.isolation,
      limits: this.limits,
      createdAt: new Date(this.createdAt).toISOString(),
      expiresAt: this.lease.started ? new Date(this.lease.expiresAt).toISOString() : undefined,
      maxExpiresAt: new Date(this.lease.maxExpiresAt).toISOString(),
      destroyReason: this.destroyReason,
      error: this.failure,
      errorCode: this.failureCode,
      job: this.job,
    };
  }

  transition(to: SandboxState, reason: string): void {
    if (!canTransition(this.state, to)) {
      const message = `cannot move sandbox ${this.id} from ${this.state} to ${to}`;
      throw ApplicationFailure.nonRetryable(message, Failure.InvalidState);
    }
    const from = this.state;
    this.state = to;
    log.info('sandbox transition', { sandboxId: this.id, from, to, reason });
    this.publish.showInUi();
    this.publish.record(from, reason);
    this.wakeups += 1;
  }

  requestDestroy(reason: string, endReason: string = reason): void {
    if (this.destroyReason) return; // the first reason wins
    this.destroyReason = reason;
    this.endReason = endReason;
    this.wakeups += 1;
    if (PROVISIONING_STATES.includes(this.state)) this.provisioningScope.cancel();
  }

  // --- messages (installed in workflows/sandbox.ts) ---------------------------------------------

  /** Why `op` cannot run now, or undefined when it can. */
  private refusal(op: Operation): ApplicationFailure | undefined {
    const { id, state, destroyReason } = this;
    if (!isAllowed(op, state)) {
      const message = invalidStateMessage(op, state);
      return ApplicationFailure.nonRetryable(message, Failure.InvalidState, { state, operation: op });
    }
    if (destroyReason) {
      // Still RUNNING for a moment, but the lease is over: say so rather than accept the work.
      const message = `cannot ${op} sandbox ${id}: it is being destroyed (${destroyReason})`;
      return ApplicationFailure.nonRetryable(message, Failure.InvalidState, { state, operation: op, destroyReason });
    }
    // A renewal is instant and always welcome; longer work would hold the rollover back.
    if (this.draining && op !== 'renewLease') {
      return ApplicationFailure.nonRetryable(drainingMessage(this), Failure.Busy, { state });
    }
    return undefined;
  }

  private requireState(op: Operation): void {
    const refused = this.refusal(op);
    if (refused) throw refused;
  }

  validateRenewal(input: RenewLeaseInput | undefined): void {
    this.requireState('renewLease');
    const problem = validateTtl(input?.ttlSeconds);
    if (problem) throw ApplicationFailure.nonRetryable(problem, Failure.InvalidArgument);
  }

  renewLease({ ttlSeconds }: RenewLeaseInput): RenewLeaseResult {
    return this.extendLease(ttlSeconds, '');
  }

  /** Signals may come from the Temporal UI or CLI with no input at all: never destructure blindly. */
  renewLeaseBySignal(input: RenewLeaseInput | undefined): void {
    const ttlSeconds = input?.ttlSeconds;
    const problem = validateTtl(ttlSeconds) ?? this.refusal('renewLease')?.message;
    if (problem) {
      log.warn('renewLease signal ignored', { sandboxId: this.id, problem });
      return;
    }
    this.extendLease(ttlSeconds as number, ' (signal)');
  }

  private extendLease(ttlSeconds: number, via: string): RenewLeaseResult {
    const result = this.lease.renew(this.id, Date.now(), ttlSeconds);
    this.publish.showInUi();
    this.publish.record(this.state, `lease renewed until ${result.expiresAt}${via}`);
    this.wakeups += 1;
    return result;
  }

  /** A destroy request: the lease loop sees it and the sandbox goes. */
  destroy(input: DestroyRequest | undefined): void {
    const requestedBy = input?.requestedBy;
    // The API always names who asked; a session (or the reaper for it) says 'session ended'.
    const endReason = requestedBy
      ? EndReason.DestroyedByApi
      : input?.reason === EndReason.SessionEnded
        ? EndReason.SessionEnded
        : EndReason.DestroyRequested;
    this.requestDestroy(input?.reason ?? `destroy requested${requestedBy ? ` by ${requestedBy}` : ''}`, endReason);
  }

  /** From the reaper: the hypervisor no longer has the VM. */
  vmLost(input: { detail?: string } | undefined): void {
    this.failure = input?.detail ?? 'vm lost';
    this.requestDestroy('vm lost', EndReason.VmLost);
  }

  validateExec(cmd: ExecInput | undefined, background = false): void {
    this.requireState('exec');
    validateCommand(this, cmd, background);
  }

  exec(cmd: ExecInput): Promise<ExecOutput> {
    return exec(this, cmd);
  }

  startExec(cmd: ExecInput): Promise<{ execId: string }> {
    return startExec(this, cmd);
  }

  validateKillExec(input: { execId?: unknown } | undefined): void {
    validateKillExec(input);
  }

  killExec(input: { execId: string }): Promise<KillExecResult> {
    return killExec(this, input);
  }

  validateFiles(op: FileOp | undefined): void {
    this.requireState('files');
    validateFileOp(op);
  }

  files(op: FileOp): Promise<FileOpResult> {
    return runFileOp(this, op);
  }

  validateStop(): void {
    this.requireState('stop');
    if (this.job?.state === 'RUNNING') {
      const message = `cannot stop sandbox ${this.id} while its job is RUNNING`;
      throw ApplicationFailure.nonRetryable(message, Failure.InvalidState, { state: this.state, job: this.job.state });
    }
  }

  stop(): Promise<SandboxStatus> {
    return this.oneAtATime(
      () => this.validateStop(),
      async () => {
        await provisioning('stop sandbox').stopSandbox({ id: this.id, driver: this.request.driver });
        this.transition('STOPPED', 'stop requested');
        return this.status();
      },
    );
  }

  validateStart(): void {
    this.requireState('start');
  }

  start(): Promise<SandboxStatus> {
    return this.oneAtATime(
      () => this.validateStart(),
      async () => {
        await provisioning('start sandbox').startSandbox({ id: this.id, driver: this.request.driver });
        this.transition('RUNNING', 'start requested');
        return this.status();
      },
    );
  }

  /**
   * Runs a stop or a start after any other under way, then checks again that it may run: a second
   * stop that waited for the first is refused like any stop of a STOPPED sandbox. patched is asked
   * only when one is under way, the one case that ran differently before: both at once.
   */
  private oneAtATime<T>(check: () => void, fn: () => Promise<T>): Promise<T> {
    if (this.stopStart.locked && !patched('serialized-stop-start-v1')) return fn();
    return this.stopStart.run(() => {
      check();
      return fn();
    });
  }

  /** Resolves once the sandbox has left the provisioning states. */
  async ready(): Promise<SandboxStatus> {
    await condition(() => !PROVISIONING_STATES.includes(this.state));
    return this.status();
  }

  // --- lifecycle (driven by workflows/sandbox.ts) -----------------------------------------------

  /** Shows a new or continued run and records a new one's request. */
  announce(carried: boolean): void {
    // A new run's search attributes were set when it started (the first transition follows at once).
    if (carried || !this.lean) this.publish.showInUi();
    if (!carried) this.publish.record(null, 'sandbox requested');
  }

  /** Tells the session about this sandbox; a session that is gone means this sandbox must go too. */
  async joinSession(sessionId: string): Promise<void> {
    try {
      await getExternalWorkflowHandle(sessionWorkflowId(sessionId)).signal(sandboxJoinedSignal, { sandboxId: this.id });
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.requestDestroy('session ended', EndReason.SessionEnded);
    }
  }

  async provisionAndBoot(): Promise<void> {
    const { id, request } = this;
    await this.provisioningScope.run(async () => {
      this.transition('PROVISIONING', `creating on ${request.driver}`);
      const created = await provisioning(createSummary(request.driver, request.template)).createSandbox({
        id,
        driver: request.driver,
        template: request.template,
        labels: request.labels,
        limits: request.limits,
      });
      this.isolation = created.isolation;
      this.limits = created.limits;
      this.transition('BOOTING', `created (${created.isolation})`);
      const timeoutSeconds = request.readyTimeoutSeconds;
      await bootWait(timeoutSeconds).waitSandboxReady({ id, driver: request.driver, timeoutSeconds });
    });
    this.lease.begin(Date.now(), request.ttlSeconds);
    this.transition('RUNNING', 'guest ready');
  }

  /** A permanent create/boot error (or retries exhausted): FAILED, then destroy what exists. */
  createFailed(failure: string, type: string | undefined): void {
    this.failure = failure;
    this.failureCode = failureType(type);
    this.transition('FAILED', `create failed: ${failure}`);
    this.destroyReason = `create failed: ${failure}`;
    this.endReason = createFailedReason(this.failureCode);
  }

  /** The lease ran out: EXPIRED, a job still going is TIMEOUT, and the sandbox goes. */
  expire(): void {
    if (this.job?.state === 'RUNNING' || this.job?.state === 'QUEUED') this.job.state = 'TIMEOUT';
    this.transition('EXPIRED', 'lease expired');
    this.destroyReason = 'lease expired';
    const lease = this.lease;
    this.endReason = lease.expiresAt >= lease.maxExpiresAt ? EndReason.MaxLifetime : EndReason.LeaseExpired;
  }

  /** Destroys the VM (whatever is left of it) and ends the run DESTROYED. Retried until it succeeds. */
  async destroyVm(): Promise<SandboxResult> {
    const { job, failure } = this;
    const reason = (this.destroyReason ??= failure ? `create failed: ${failure}` : 'workflow ended');
    this.endReason ??= failure ? createFailedReason(this.failureCode) : EndReason.WorkflowEnded;
    if (job?.state === 'QUEUED' || job?.state === 'RUNNING') {
      // The sandbox ends before the job could finish (create failed, destroyed early): say so.
      job.state = 'FAILED';
      job.error ??= failure ? `create failed: ${failure}` : `sandbox ended before the job finished (${reason})`;
    }
    // patched: runs that went before the end reason was a search attribute replay without it; from
    // here on the state's upserts carry it (the same upserts: no command but the patch marker).
    this.showEndReason = patched('end-reason-search-attribute-v1');
    if (this.state !== 'DESTROYING') this.transition('DESTROYING', reason);
    const { existed } = await this.destroyOnDriver(reason);
    await settleAfterDestroy(this, reason);
    this.transition('DESTROYED', existed ? reason : `${reason} (vm already gone)`);
    return { id: this.id, state: 'DESTROYED', destroyReason: reason };
  }

  private async destroyOnDriver(reason: string): Promise<{ existed: boolean }> {
    const target = { id: this.id, driver: this.request.driver };
    // patched: runs whose destroy was already scheduled as an activity replay it so.
    if (patched('local-destroy-v1')) {
      try {
        return await teardownHere(reason).destroySandbox(target);
      } catch (err) {
        const error = rootMessage(err);
        log.warn('local destroy failed; handing it to the teardown queue', { sandboxId: this.id, error });
      }
    }
    return teardown(reason).destroySandbox(target);
  }
}
