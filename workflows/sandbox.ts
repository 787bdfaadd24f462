// A sandbox's whole life as one workflow: create → boot → run → lease → guaranteed destroy.
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  currentUpdateInfo,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  TimeoutFailure,
  setHandler,
  sleep,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { Lease, validateTtl } from './lease';
import {
  awaitReadyUpdate,
  destroySignal,
  execUpdate,
  getStatus,
  renewLeaseSignal,
  renewLeaseUpdate,
  sandboxJoinedSignal,
  startUpdate,
  stopUpdate,
  vmLostSignal,
} from './messages';
import { SandboxExpiresAt, SandboxState as SandboxStateKey } from './search-attributes';
import { provisionQueue, teardownQueue } from './task-queues';
import {
  canTransition,
  invalidStateMessage,
  isAllowed,
  type Operation,
  type SandboxState,
} from './states';
import type {
  ExecInput,
  ExecOutput,
  JobStatus,
  SandboxInput,
  SandboxLimits,
  SandboxResult,
  SandboxStatus,
  TransitionEvent,
} from './types';
import { sessionWorkflowId } from './ids';
import { Failure, failureType } from './failures';

type Activities = ReturnType<typeof createActivities>;

// Registry writes never block the lifecycle (PostgreSQL is a read model): retried forever, awaited
// only before the run closes. Rows are upserted by sequence number, so order of arrival is irrelevant.
const registry = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '500ms', maximumInterval: '30s' },
});

// Transitions are written by a local activity in the workflow task that made them, batched: one
// marker event instead of a workflow task and three activity events each, and never queued behind
// creates. Longer backoffs (PostgreSQL down) sleep on a timer rather than hold the task open.
const registryLocal = proxyLocalActivities<Activities>({
  startToCloseTimeout: '5s',
  retry: { initialInterval: '200ms', maximumInterval: '30s' },
  localRetryThreshold: '5s',
});

// WAIT_CANCELLATION_COMPLETED: destroy must not race a create that is still making the VM.
const PROVISIONING = {
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', maximumInterval: '20s', maximumAttempts: 5 },
} as const;

// Destroy is retried forever: a sandbox that was created must be destroyed. Short, flat-ish
// backoff: a destroy is cheap to retry and every second of delay is a second past the lease.
const TEARDOWN = {
  startToCloseTimeout: '5m',
  // A destroy lost with a crashed worker is retried after this; the activity heartbeats every second.
  heartbeatTimeout: '5s',
  retry: { initialInterval: '500ms', backoffCoefficient: 1.5, maximumInterval: '5s' },
} as const;

// A destroy runs first as a local activity inside the workflow task that decided it (a lease's
// timer, a destroy signal): no task-queue round trip, no second workflow task, so a lease ends on
// time even when expiries bunch up. A few quick tries; past them the teardown queue's activity
// takes over with its forever-retries (a slow driver, a worker without the driver, a crash).
const LOCAL_TEARDOWN = {
  startToCloseTimeout: '60s',
  retry: { initialInterval: '500ms', backoffCoefficient: 1.5, maximumInterval: '2s', maximumAttempts: 3 },
} as const;

const PROVISIONING_STATES: readonly SandboxState[] = ['REQUESTED', 'PROVISIONING', 'BOOTING'];
/** Default history length that triggers a continue-as-new (before Temporal's own suggestion). */
const DEFAULT_MAX_HISTORY_EVENTS = 10_000;
/** Past these (Temporal's hard limits: 51,200 events, 50 MB) new execs/stops/starts wait for the rollover. */
const DRAIN_HISTORY_EVENTS = 20_000;
const DRAIN_HISTORY_BYTES = 20 * 1024 * 1024;

export async function sandboxWorkflow(input: SandboxInput): Promise<SandboxResult> {
  const { request, carried } = input;
  const { id } = request;
  let state: SandboxState = carried?.state ?? 'REQUESTED';
  let seq = carried?.seq ?? 0;
  let isolation = carried?.isolation;
  let limits: SandboxLimits | undefined = carried?.limits;
  let lease: Lease | undefined = carried
    ? new Lease(carried.createdAt, carried.expiresAt, request.maxLifetimeSeconds)
    : undefined;
  const createdAt = carried?.createdAt ?? Date.now();
  let destroyReason: string | undefined;
  let failure: string | undefined;
  let failureCode: string | undefined;
  let wakeups = 0; // bumped by handlers so the lease loop re-evaluates its timer
  let job: JobStatus | undefined = carried ? carried.job : request.job ? { state: 'QUEUED', steps: [] } : undefined;
  const pendingWrites: Promise<unknown>[] = [];
  let writesInFlight = 0;
  // Runs started before the history was made lean replay the old way: one activity per
  // transition, an upsert per change, a lease timer restarted by every renewal.
  const lean = patched('lean-history-v1');
  let unsent: TransitionEvent[] = [];
  let draining = false; // history is near its limit: new execs/stops/starts wait for the rollover
  const provisioningScope = new CancellationScope();
  const { taskQueue } = workflowInfo();
  const provisioning = proxyActivities<Activities>({ ...PROVISIONING, taskQueue: provisionQueue(taskQueue) });
  const teardown = proxyActivities<Activities>({ ...TEARDOWN, taskQueue: teardownQueue(taskQueue) });
  const teardownHere = proxyLocalActivities<Activities>(LOCAL_TEARDOWN);

  const status = (): SandboxStatus => ({
    id,
    owner: request.owner,
    state,
    driver: request.driver,
    template: request.template,
    labels: request.labels,
    sessionId: request.sessionId,
    isolation,
    limits,
    createdAt: new Date(createdAt).toISOString(),
    expiresAt: lease ? new Date(lease.expiresAt).toISOString() : undefined,
    maxExpiresAt: new Date(createdAt + request.maxLifetimeSeconds * 1000).toISOString(),
    destroyReason,
    error: failure,
    errorCode: failureCode,
    job,
  });

  let uiPending = false;
  function showInUi(): void {
    const upsert = () =>
      upsertSearchAttributes([
        { key: SandboxStateKey, value: state },
        // Before RUNNING: the latest it may live, so the reaper also catches a boot that is stuck.
        { key: SandboxExpiresAt, value: new Date(lease ? lease.expiresAt : createdAt + request.maxLifetimeSeconds * 1000) },
      ]);
    if (!lean) upsert();
    else if (!uiPending) {
      // One upsert per activation, with the state it ends in (EXPIRED → DESTROYING is one event).
      uiPending = true;
      void (async () => {
        await Promise.resolve(); // the rest of this synchronous run joins in
        uiPending = false;
        upsert();
      })();
    }
    const expiry = lease ? `, lease until ${new Date(lease.expiresAt).toISOString()}` : '';
    setCurrentDetails(`**${state}**${expiry}${destroyReason ? ` — ${destroyReason}` : ''}`);
  }

  /**
   * Starts a registry write that the run awaits before it closes. Never in the caller's scope: a
   * transition made inside the cancelled provisioning scope (a destroy arrived while create ran,
   * then create succeeded → BOOTING) would schedule its write there, which rejects at once with
   * nobody awaiting it yet: an unhandled rejection that failed every workflow task from then on,
   * so the created VM was never destroyed.
   */
  function write(fn: () => Promise<unknown>): void {
    writesInFlight += 1;
    pendingWrites.push(
      CancellationScope.nonCancellable(fn).finally(() => {
        writesInFlight -= 1;
      }),
    );
  }

  function recordSnapshot(from: SandboxState | null, reason: string): void {
    seq += 1;
    const at = new Date().toISOString();
    const event: TransitionEvent = { sandboxId: id, seq, from, to: state, reason, at, sandbox: status() };
    if (!lean) {
      write(() => registry.recordTransition(event));
      return;
    }
    unsent.push(event);
    if (unsent.length > 1) return; // a batch is already waiting for more
    write(async () => {
      // One hop: whatever this synchronous run records joins the batch. Not more: the SDK captures
      // a stack trace for every promise a workflow makes (a sixth of the workflow thread's time).
      await Promise.resolve();
      const batch = unsent;
      unsent = [];
      await registryLocal.recordTransitions(batch);
    });
  }

  function transition(to: SandboxState, reason: string): void {
    if (!canTransition(state, to)) {
      throw ApplicationFailure.nonRetryable(`cannot move sandbox ${id} from ${state} to ${to}`, Failure.InvalidState);
    }
    const from = state;
    state = to;
    log.info('sandbox transition', { sandboxId: id, from, to, reason });
    showInUi();
    recordSnapshot(from, reason);
    wakeups += 1;
  }

  /** Why `op` cannot run now, or undefined when it can. */
  function refusal(op: Operation): ApplicationFailure | undefined {
    if (!isAllowed(op, state)) {
      return ApplicationFailure.nonRetryable(invalidStateMessage(op, state), Failure.InvalidState, { state, operation: op });
    }
    if (destroyReason) {
      // Still RUNNING for a moment, but the lease is over: say so rather than accept the work.
      return ApplicationFailure.nonRetryable(`cannot ${op} sandbox ${id}: it is being destroyed (${destroyReason})`, Failure.InvalidState, {
        state,
        operation: op,
        destroyReason,
      });
    }
    // A renewal is instant and always welcome; longer work would hold the rollover back.
    if (draining && op !== 'renewLease') {
      return ApplicationFailure.nonRetryable(`sandbox ${id} is continuing as new; retry in a moment`, Failure.Busy, { state });
    }
    return undefined;
  }

  function requireState(op: Operation): void {
    const refused = refusal(op);
    if (refused) throw refused;
  }

  function requestDestroy(reason: string): void {
    if (destroyReason) return; // the first reason wins
    destroyReason = reason;
    wakeups += 1;
    if (PROVISIONING_STATES.includes(state)) provisioningScope.cancel();
  }

  // --- messages ---------------------------------------------------------------------------------
  setHandler(getStatus, status);

  setHandler(
    renewLeaseUpdate,
    ({ ttlSeconds }) => {
      const result = lease!.renew(id, Date.now(), ttlSeconds);
      showInUi();
      recordSnapshot(state, `lease renewed until ${result.expiresAt}`);
      wakeups += 1;
      return result;
    },
    {
      validator: (input) => {
        requireState('renewLease');
        const problem = validateTtl(input?.ttlSeconds);
        if (problem) throw ApplicationFailure.nonRetryable(problem, Failure.InvalidArgument);
      },
    },
  );

  // Signals may come from the Temporal UI or CLI with no input at all: never destructure blindly.
  setHandler(renewLeaseSignal, (input) => {
    const ttlSeconds = input?.ttlSeconds;
    const problem = validateTtl(ttlSeconds) ?? refusal('renewLease')?.message;
    if (problem) {
      log.warn('renewLease signal ignored', { sandboxId: id, problem });
      return;
    }
    const result = lease!.renew(id, Date.now(), ttlSeconds as number);
    showInUi();
    recordSnapshot(state, `lease renewed until ${result.expiresAt} (signal)`);
    wakeups += 1;
  });

  setHandler(destroySignal, (input) => {
    const requestedBy = input?.requestedBy;
    requestDestroy(input?.reason ?? `destroy requested${requestedBy ? ` by ${requestedBy}` : ''}`);
  });

  setHandler(vmLostSignal, (input) => {
    failure = input?.detail ?? 'vm lost';
    requestDestroy('vm lost');
  });

  setHandler(execUpdate, (cmd: ExecInput) => runCommand(cmd), {
    validator: (cmd) => {
      requireState('exec');
      if (!Array.isArray(cmd?.command) || cmd.command.length === 0) {
        throw ApplicationFailure.nonRetryable('command must be a non-empty array of strings', Failure.InvalidArgument);
      }
    },
  });

  setHandler(
    stopUpdate,
    async () => {
      await provisioning.stopSandbox({ id, driver: request.driver });
      transition('STOPPED', 'stop requested');
      return status();
    },
    {
      validator: () => {
        requireState('stop');
        if (job?.state === 'RUNNING') {
          throw ApplicationFailure.nonRetryable(`cannot stop sandbox ${id} while its job is RUNNING`, Failure.InvalidState, { state, job: job.state });
        }
      },
    },
  );

  setHandler(
    startUpdate,
    async () => {
      await provisioning.startSandbox({ id, driver: request.driver });
      transition('RUNNING', 'start requested');
      return status();
    },
    { validator: () => requireState('start') },
  );

  setHandler(awaitReadyUpdate, async () => {
    await condition(() => !PROVISIONING_STATES.includes(state));
    return status();
  });

  // --- lifecycle --------------------------------------------------------------------------------
  async function runCommand(cmd: ExecInput, execId = currentUpdateInfo()?.id ?? uuid4()): Promise<ExecOutput> {
    // At most once: re-running a command the agent did not ask for twice could do harm. The
    // activity heartbeats, so a command lost with its worker fails in seconds, not at its timeout.
    const exec = proxyActivities<Activities>({
      startToCloseTimeout: `${(cmd.timeoutSeconds ?? 300) + 30}s`,
      heartbeatTimeout: '10s',
      retry: { maximumAttempts: 1 },
    });
    let out: ExecOutput;
    try {
      const { unrecorded, ...result } = await exec.execInSandbox({ id, driver: request.driver, execId, input: cmd });
      // The registry was down when the command ended: record it now (registry writes retry forever).
      if (unrecorded) write(() => registry.recordExecEnd({ record: unrecorded, output: result }));
      out = result;
    } catch (err) {
      // A worker that died mid-command never wrote the exec's end: the record must not stay open.
      // patched: runs whose exec failed before this write existed must replay without it.
      if (patched('record-interrupted-execs')) {
        write(() => registry.recordExecInterrupted({ id, execId, reason: `interrupted: ${rootMessage(err)}` }));
      }
      if (destroyReason) throw cutShortByDestroy();
      if (err instanceof Error && err.cause instanceof TimeoutFailure) {
        throw ApplicationFailure.nonRetryable(
          `exec in sandbox ${id} was interrupted: the worker running it was lost (${rootMessage(err)}); ` +
            'the command may have partly run, and is recorded as interrupted',
          Failure.ExecInterrupted,
        );
      }
      throw err;
    }
    // Killed by a signal while the sandbox was being torn down: the destroy did it, not the command.
    if (destroyReason && out.exitCode > 128) throw cutShortByDestroy(out.exitCode);
    return out;
  }

  function cutShortByDestroy(exitCode?: number): ApplicationFailure {
    return ApplicationFailure.nonRetryable(
      `cannot exec in sandbox ${id}: it was destroyed while the command ran (${destroyReason})`,
      Failure.InvalidState,
      { state, operation: 'exec', destroyReason, ...(exitCode !== undefined ? { exitCode } : {}) },
    );
  }

  async function provisionAndBoot(): Promise<void> {
    await provisioningScope.run(async () => {
      transition('PROVISIONING', `creating on ${request.driver}`);
      const created = await provisioning.createSandbox({
        id,
        driver: request.driver,
        template: request.template,
        labels: request.labels,
        limits: request.limits,
      });
      isolation = created.isolation;
      limits = created.limits;
      transition('BOOTING', `created (${created.isolation})`);
      await proxyActivities<Activities>({
        taskQueue: provisionQueue(taskQueue),
        startToCloseTimeout: `${request.readyTimeoutSeconds + 30}s`,
        heartbeatTimeout: '30s',
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        retry: { maximumAttempts: 3 },
      }).waitSandboxReady({ id, driver: request.driver, timeoutSeconds: request.readyTimeoutSeconds });
    });
    lease = Lease.start(Date.now(), createdAt, request.ttlSeconds, request.maxLifetimeSeconds);
    transition('RUNNING', 'guest ready');
  }

  async function runJob(): Promise<void> {
    if (!job || !request.job) return;
    job.state = 'RUNNING';
    for (const command of request.job.commands) {
      if (state !== 'RUNNING') return;
      try {
        const out = await runCommand({ command, timeoutSeconds: request.job.commandTimeoutSeconds }, `job-${job.steps.length}`);
        // Full output (byte-exact) is in the execs table; the workflow keeps text excerpts so its
        // payloads stay small: never the base64 of binary output.
        const { stdoutBase64: _out, stderrBase64: _err, ...result } = out;
        job.steps.push({ command, ...result, stdout: excerpt(out.stdout), stderr: excerpt(out.stderr) });
        if (job.state !== 'RUNNING') break; // the lease ended while the command ran (TIMEOUT)
        if (out.timedOut || out.exitCode !== 0) {
          job.state = out.timedOut ? 'TIMEOUT' : 'FAILED';
          break;
        }
      } catch (err) {
        // The lease may have ended mid-command (TIMEOUT, set by holdLease): keep that verdict.
        if (job.state === 'RUNNING') {
          job.state = 'FAILED';
          job.error = err instanceof Error ? err.message : String(err);
        }
        break;
      }
    }
    if (job.state === 'RUNNING') job.state = 'COMPLETED';
    recordSnapshot(state, `job ${job.state.toLowerCase()}`);
    if (!request.job.keepalive) requestDestroy(`job ${job.state.toLowerCase()}`);
  }

  let leaseTimerSet = false;
  /**
   * Waits for `done` or the lease's end. One durable timer per lease period: a renewal only moves
   * the expiry later, so the timer already set wakes the loop (which sets the next one) and a
   * renewal adds no timer events. The old way restarted the timer on every wake-up.
   */
  async function untilOrLeaseEnd(done: () => boolean, msLeft: number): Promise<void> {
    if (!lean) {
      await condition(done, msLeft);
      return;
    }
    if (!leaseTimerSet) {
      leaseTimerSet = true;
      void CancellationScope.nonCancellable(() => sleep(msLeft)).then(
        () => {
          leaseTimerSet = false;
          wakeups += 1;
        },
        () => {},
      );
    }
    const seen = wakeups;
    await condition(() => done() || wakeups !== seen);
  }

  /** Sleeps on the lease until it ends; returns 'rollover' when history asks for continue-as-new. */
  async function holdLease(): Promise<'ended' | 'rollover'> {
    const maxEvents = request.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
    for (;;) {
      if (destroyReason) {
        if (job?.state === 'RUNNING') job.state = 'FAILED';
        return 'ended';
      }
      const msLeft = lease!.msLeft(Date.now());
      if (msLeft <= 0) {
        if (job?.state === 'RUNNING' || job?.state === 'QUEUED') job.state = 'TIMEOUT';
        transition('EXPIRED', 'lease expired');
        destroyReason = 'lease expired';
        return 'ended';
      }
      const info = workflowInfo();
      if ((info.continueAsNewSuggested || info.historyLength > maxEvents) && job?.state !== 'RUNNING') {
        // Roll over once in-flight execs and writes are done; take new work meanwhile unless history
        // nears its hard limit. Inside the lease loop, so a destroy request or the lease end still wins.
        const nearLimit = () => {
          const now = workflowInfo();
          return now.historyLength > DRAIN_HISTORY_EVENTS || now.historySize > DRAIN_HISTORY_BYTES;
        };
        draining = nearLimit();
        const drained = () => allHandlersFinished() && writesInFlight === 0;
        await untilOrLeaseEnd(() => drained() || Boolean(destroyReason) || (!draining && nearLimit()), msLeft);
        if (drained() && !destroyReason) return 'rollover';
        draining = false;
        continue;
      }
      const seen = wakeups;
      await untilOrLeaseEnd(() => wakeups !== seen, msLeft);
    }
  }

  async function destroyVm(): Promise<void> {
    destroyReason ??= failure ? `create failed: ${failure}` : 'workflow ended';
    if (job?.state === 'QUEUED' || job?.state === 'RUNNING') {
      // The sandbox ends before the job could finish (create failed, destroyed early): say so.
      job.state = 'FAILED';
      job.error ??= failure ? `create failed: ${failure}` : `sandbox ended before the job finished (${destroyReason})`;
    }
    if (state !== 'DESTROYING') transition('DESTROYING', destroyReason);
    const { existed } = await destroyOnDriver();
    transition('DESTROYED', existed ? destroyReason : `${destroyReason} (vm already gone)`);
  }

  async function destroyOnDriver(): Promise<{ existed: boolean }> {
    const target = { id, driver: request.driver };
    // patched: runs whose destroy was already scheduled as an activity replay it so.
    if (patched('local-destroy-v1')) {
      try {
        return await teardownHere.destroySandbox(target);
      } catch (err) {
        log.warn('local destroy failed; handing it to the teardown queue', { sandboxId: id, error: rootMessage(err) });
      }
    }
    return teardown.destroySandbox(target);
  }

  /** Tells the session about this sandbox; a session that is gone means this sandbox must go too. */
  async function joinSession(sessionId: string): Promise<void> {
    try {
      await getExternalWorkflowHandle(sessionWorkflowId(sessionId)).signal(sandboxJoinedSignal, { sandboxId: id });
    } catch (err) {
      if (isCancellation(err)) throw err;
      requestDestroy('session ended');
    }
  }

  // A new run's search attributes were set when it started (the first transition follows at once).
  if (carried || !lean) showInUi();
  if (!carried) recordSnapshot(null, 'sandbox requested');

  let outcome: 'ended' | 'rollover' = 'ended';
  let cancelled: unknown;
  try {
    if (!carried && request.sessionId) await joinSession(request.sessionId);
    if (!carried && !destroyReason) {
      await provisionAndBoot();
      void runJob();
    }
    outcome = await holdLease();
  } catch (err) {
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) {
      cancelled = err;
      requestDestroy('workflow cancelled');
    } else if (!destroyReason) {
      // A permanent create/boot error (or retries exhausted): FAILED, then destroy what exists.
      failure = rootMessage(err);
      failureCode = failureType(rootType(err));
      transition('FAILED', `create failed: ${failure}`);
      destroyReason = `create failed: ${failure}`;
    }
  } finally {
    // Continue-as-new is decided above and happens after this block, so a rollover never destroys.
    if (outcome !== 'rollover') await CancellationScope.nonCancellable(destroyVm);
    await CancellationScope.nonCancellable(() => Promise.all(pendingWrites));
  }
  if (cancelled) throw cancelled;

  if (outcome === 'rollover') {
    await condition(allHandlersFinished);
    await Promise.all(pendingWrites);
    return continueAsNew<typeof sandboxWorkflow>({
      request,
      carried: {
        state: state as 'RUNNING' | 'STOPPED',
        createdAt,
        expiresAt: lease!.expiresAt,
        seq,
        isolation: isolation ?? 'unknown',
        limits,
        job,
      },
    });
  }
  return { id, state: 'DESTROYED', destroyReason: destroyReason! };
}

const EXCERPT_BYTES = 4096;

function excerpt(text: string): string {
  if (text.length <= EXCERPT_BYTES) return text;
  // Never cut between the two halves of a surrogate pair: a lone half cannot be stored.
  const end = /[\ud800-\udbff]/.test(text[EXCERPT_BYTES - 1]!) ? EXCERPT_BYTES - 1 : EXCERPT_BYTES;
  return `${text.slice(0, end)}…[truncated; full output in /execs]`;
}

function rootType(err: unknown): string | undefined {
  let e: unknown = err;
  let type: string | undefined;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && e.type) type = e.type;
    e = e.cause;
  }
  return type;
}

function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
