// The sandbox and session workflows in skipped time, over fake activities (fake-activities.ts):
// what time does to a sandbox (lease, max lifetime, session, job, exec timeouts), what must hold
// when work overlaps (two stops at once, destroy mid-create, rollover mid-exec), and histories
// recorded before the reshape still replay. One file: bundling the workflows takes seconds.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowUpdateFailedError, WorkflowUpdateStage } from '@temporalio/client';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXEC_TIMEOUT_SECONDS } from '../../../hypervisors/guest/contract';
import { EndReason } from '../../../workflows/end-reasons';
import { Failure } from '../../../workflows/failures';
import { sandboxWorkflowId, sessionWorkflowId } from '../../../workflows/ids';
import {
  destroySignal,
  execUpdate,
  filesUpdate,
  getSessionStatus,
  killExecUpdate,
  startExecUpdate,
  getStatus,
  renewLeaseSignal,
  renewLeaseUpdate,
  sessionHeartbeatSignal,
  startUpdate,
  stopUpdate,
} from '../../../workflows/messages';
import { SandboxEndReason, SandboxState } from '../../../workflows/search-attributes';
import { sessionWorkflow } from '../../../workflows/session';
import type { ExecInput, JobSpec } from '../../../workflows/types';
import { MAX_RUNNING_EXECS } from '../../../workflows/sandbox/exec-handlers';
import { commands } from './fake-activities';
import { startWorkflowTestBed, until, untilState, type SandboxHandle, type WorkflowTestBed } from './test-bed';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

let bed: WorkflowTestBed;
beforeAll(async () => {
  bed = await startWorkflowTestBed();
}, 60_000);
afterAll(() => bed?.close());

/** When the sandbox entered `state`, in ms of (skipped) workflow time. */
const enteredAt = (id: string, state: string) =>
  Date.parse(bed.world.transitions.find((e) => e.sandboxId === id && e.to === state)!.at);

/** A timer fires at its time or a moment after. */
const onTime = (at: number, due: string | number) => {
  const late = at - (typeof due === 'string' ? Date.parse(due) : due);
  return late >= 0 && late < 1000;
};

/** Settles to the value, or to the failure's type and message. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (err) => {
      const cause = err instanceof WorkflowUpdateFailedError ? (err.cause as { type?: string; message: string }) : err;
      return { type: cause.type, message: cause.message };
    },
  );

const job = (cmds: string[][], more: Partial<JobSpec> = {}): JobSpec => ({ commands: cmds, keepalive: false, ...more });

/** The exec activity's inputs for a sandbox, with the start-to-close timeout it was given. */
const execs = (id: string) =>
  bed.world.calls
    .filter((c) => c.activity === 'execInSandbox' && c.id === id)
    .map((c) => c.input as ExecInput & { startToCloseTimeoutMs: number });

describe('lease', () => {
  it('ends the sandbox when it runs out: EXPIRED, then destroyed', async () => {
    const sbx = await bed.startSandbox({ ttlSeconds: 60 });
    expect(await sbx.result()).toEqual({ id: sbx.id, state: 'DESTROYED', destroyReason: 'lease expired' });
    expect(bed.world.states(sbx.id).slice(-4)).toEqual(['RUNNING', 'EXPIRED', 'DESTROYING', 'DESTROYED']);
    expect(onTime(enteredAt(sbx.id, 'EXPIRED'), enteredAt(sbx.id, 'RUNNING') + 60_000)).toBe(true);
    expect(bed.world.called('destroySandbox', sbx.id)).toBe(1);
    expect(bed.world.vms.has(sbx.id)).toBe(false);
  });

  it('a renewal by update moves its end and answers with it; a bad ttl or a stopped sandbox is refused', async () => {
    const sbx = await bed.startSandbox({ ttlSeconds: 60 });
    await untilState(sbx, 'RUNNING');
    const badTtl = sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 0 }] });
    expect(await outcome(badTtl)).toMatchObject({ type: Failure.InvalidArgument });

    const renewed = await sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 600 }] });
    expect(renewed.capped).toBe(false);
    expect(renewed.expiresAt).toBe((await sbx.query(getStatus)).expiresAt);
    await bed.env.sleep(120_000); // well past the first 60 s
    expect((await sbx.query(getStatus)).state).toBe('RUNNING');

    await sbx.executeUpdate(stopUpdate);
    const whileStopped = sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 60 }] });
    expect(await outcome(whileStopped)).toMatchObject({ type: Failure.InvalidState });
    await sbx.result();
    expect(onTime(enteredAt(sbx.id, 'EXPIRED'), renewed.expiresAt)).toBe(true);
  });

  it('never passes the max lifetime: a longer renewal is capped, and the sandbox ends there', async () => {
    const sbx = await bed.startSandbox({ ttlSeconds: 60, maxLifetimeSeconds: 120 });
    await untilState(sbx, 'RUNNING');
    const { maxExpiresAt } = await sbx.query(getStatus);
    const renewed = await sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 3600 }] });
    expect(renewed).toMatchObject({ capped: true, expiresAt: maxExpiresAt });
    expect(await sbx.result()).toMatchObject({ destroyReason: 'lease expired' });
    expect(onTime(enteredAt(sbx.id, 'EXPIRED'), maxExpiresAt)).toBe(true);
  });
});

describe('session', () => {
  it('a session whose heartbeat lapses destroys its sandboxes; a heartbeat moves the lapse', async () => {
    const sessionId = `session-${bed.taskQueue}`;
    const session = await bed.env.client.workflow.start(sessionWorkflow, {
      workflowId: sessionWorkflowId(sessionId),
      taskQueue: bed.taskQueue,
      args: [{ id: sessionId, heartbeatTimeoutSeconds: 60 }],
    });
    const sbx = await bed.startSandbox({ ttlSeconds: 3600, sessionId });
    await untilState(sbx, 'RUNNING');
    // The sandbox joined the session from inside its own workflow.
    await until(async () => (await session.query(getSessionStatus)).sandboxes.includes(sbx.id));

    await bed.env.sleep(40_000);
    await session.signal(sessionHeartbeatSignal);
    expect(await session.result()).toMatchObject({ state: 'ENDED', endReason: 'heartbeat lapsed' });
    expect(await sbx.result()).toMatchObject({ state: 'DESTROYED', destroyReason: 'session ended' });
    // 40 s, then a heartbeat's 60 s.
    expect(onTime(enteredAt(sbx.id, 'DESTROYING'), enteredAt(sbx.id, 'RUNNING') + 100_000)).toBe(true);
  });

  it('a sandbox started in a session that has ended is destroyed at once', async () => {
    const sbx = await bed.startSandbox({ ttlSeconds: 3600, sessionId: 'never-started' });
    expect(await sbx.result()).toMatchObject({ destroyReason: 'session ended' });
    expect(bed.world.called('createSandbox', sbx.id)).toBe(0);
  });
});

describe('job', () => {
  it('a command that exits non-zero ends the job FAILED, skips the rest and destroys the sandbox', async () => {
    const sbx = await bed.startSandbox({ job: job([['echo', 'one'], commands.exit(2), ['echo', 'never']]) });
    expect(await sbx.result()).toMatchObject({ destroyReason: 'job failed' });
    const status = await sbx.query(getStatus);
    expect(status.job?.state).toBe('FAILED');
    expect(status.job?.steps.map((s) => s.exitCode)).toEqual([0, 2]);
    expect(execs(sbx.id)).toHaveLength(2);
  });

  it('a command that times out ends the job TIMEOUT, not FAILED', async () => {
    const sbx = await bed.startSandbox({ job: job([commands.timeout(), ['echo', 'never']]) });
    expect(await sbx.result()).toMatchObject({ destroyReason: 'job timeout' });
    const status = await sbx.query(getStatus);
    expect(status.job?.state).toBe('TIMEOUT');
    expect(status.job?.steps).toHaveLength(1);
  });

  it('a lease that ends while a command runs ends the job TIMEOUT', async () => {
    // Time is not skipped while an activity runs: a short lease, in real time.
    bed.world.hold('lease-mid-job');
    const sbx = await bed.startSandbox({ ttlSeconds: 0.3, job: job([commands.hold('lease-mid-job')]) });
    expect(await sbx.result()).toMatchObject({ destroyReason: 'lease expired' });
    expect((await sbx.query(getStatus)).job?.state).toBe('TIMEOUT');
    await bed.endOrphanedCommand('lease-mid-job');
  });

  it('with keepalive, a completed job leaves the sandbox RUNNING until its lease ends', async () => {
    const sbx = await bed.startSandbox({
      job: job(
        [
          ['echo', 'a'],
          ['echo', 'b'],
        ],
        { keepalive: true },
      ),
    });
    await until(async () => (await sbx.query(getStatus)).job?.state === 'COMPLETED');
    expect((await sbx.query(getStatus)).state).toBe('RUNNING');
    expect(await sbx.result()).toMatchObject({ destroyReason: 'lease expired' });
  });

  it('keeps an excerpt of long output, never cutting a surrogate pair', async () => {
    const long = `${'x'.repeat(4090)}😀${'y'.repeat(100)}`;
    const sbx = await bed.startSandbox({ job: job([['echo', long]]) });
    await sbx.result();
    const [step] = (await sbx.query(getStatus)).job!.steps;
    expect(step!.stdout).toMatch(/^echo x+…\[truncated; full output in \/execs\]$/);
    expect(step!.stdout.length).toBeLessThan(4200);
  });
});

describe('exec', () => {
  it('gives every command an explicit timeout (the default if none is asked), the activity 30 s more', async () => {
    const sbx = await bed.startSandbox({ job: job([['echo', 'job']], { keepalive: true }) });
    await untilState(sbx, 'RUNNING');
    await until(async () => (await sbx.query(getStatus)).job?.state === 'COMPLETED');
    await sbx.executeUpdate(execUpdate, { args: [{ command: ['echo', 'default'] }] });
    await sbx.executeUpdate(execUpdate, { args: [{ command: ['echo', 'asked'], timeoutSeconds: 5 }] });
    expect(execs(sbx.id).map((e) => [e.timeoutSeconds, e.startToCloseTimeoutMs])).toEqual([
      [DEFAULT_EXEC_TIMEOUT_SECONDS, (DEFAULT_EXEC_TIMEOUT_SECONDS + 30) * 1000],
      [DEFAULT_EXEC_TIMEOUT_SECONDS, (DEFAULT_EXEC_TIMEOUT_SECONDS + 30) * 1000],
      [5, 35_000],
    ]);
    await sbx.terminate();
  });
});

describe('stop and start', () => {
  it('two stops at once: the second waits for the first, then is refused naming the state', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold(`stop:${sbx.id}`);
    const first = await sbx.startUpdate(stopUpdate, { waitForStage: WorkflowUpdateStage.ACCEPTED });
    const second = await sbx.startUpdate(stopUpdate, { waitForStage: WorkflowUpdateStage.ACCEPTED });
    await until(() => bed.world.isWaiting(`stop:${sbx.id}`));
    const secondDone = outcome(second.result());
    let secondSettled = false;
    void secondDone.then(() => (secondSettled = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(secondSettled).toBe(false); // still waiting for the first stop

    bed.world.release(`stop:${sbx.id}`);
    expect(await outcome(first.result())).toMatchObject({ value: { state: 'STOPPED' } });
    const refused = { type: Failure.InvalidState, message: 'cannot stop in STOPPED state; valid states: RUNNING' };
    expect(await secondDone).toEqual(refused);
    expect(bed.world.called('stopSandbox', sbx.id)).toBe(1);
    expect(bed.world.states(sbx.id).filter((s) => s === 'STOPPED')).toHaveLength(1);

    bed.world.hold(`start:${sbx.id}`);
    const starts = [
      await sbx.startUpdate(startUpdate, { waitForStage: WorkflowUpdateStage.ACCEPTED }),
      await sbx.startUpdate(startUpdate, { waitForStage: WorkflowUpdateStage.ACCEPTED }),
    ];
    await until(() => bed.world.isWaiting(`start:${sbx.id}`));
    bed.world.release(`start:${sbx.id}`);
    const [a, b] = await Promise.all(starts.map((s) => outcome(s.result())));
    expect(a).toMatchObject({ value: { state: 'RUNNING' } });
    expect(b).toEqual({ type: Failure.InvalidState, message: 'cannot start in RUNNING state; valid states: STOPPED' });
    expect(bed.world.called('startSandbox', sbx.id)).toBe(1);
    await sbx.signal(destroySignal, {});
    expect(await sbx.result()).toMatchObject({ destroyReason: 'destroy requested' });
  });
});

describe('destroy while the create runs', () => {
  it('cancels the create, waits for it to end, then destroys', async () => {
    const sbx = await bed.startSandbox();
    bed.world.hold(`create:${sbx.id}`);
    await until(() => bed.world.isWaiting(`create:${sbx.id}`));
    await sbx.signal(destroySignal, { reason: 'changed my mind' });
    expect(await sbx.result()).toEqual({ id: sbx.id, state: 'DESTROYED', destroyReason: 'changed my mind' });
    expect(bed.world.states(sbx.id)).toEqual(['REQUESTED', 'PROVISIONING', 'DESTROYING', 'DESTROYED']);
    expect(bed.world.called('destroySandbox', sbx.id)).toBe(1);
  });

  it('a driver that finishes the create anyway: its sandbox is destroyed after, never before', async () => {
    const sbx = await bed.startSandbox();
    bed.world.hold(`create:${sbx.id}`, { ignoresCancel: true });
    await until(() => bed.world.isWaiting(`create:${sbx.id}`));
    await sbx.signal(destroySignal, { reason: 'changed my mind' });
    await new Promise((r) => setTimeout(r, 200));
    expect(bed.world.called('destroySandbox', sbx.id)).toBe(0); // the create still runs
    bed.world.release(`create:${sbx.id}`);
    expect(await sbx.result()).toMatchObject({ destroyReason: 'changed my mind' });
    const order = bed.world.calls.filter((c) => c.id === sbx.id).map((c) => c.activity);
    expect(order.indexOf('destroySandbox')).toBeGreaterThan(order.indexOf('createSandbox:end'));
    expect(bed.world.vms.has(sbx.id)).toBe(false);
  });
});

describe('rollover', () => {
  it('continues as new once an exec in flight is done, serving renewals meanwhile; keeps VM and lease', async () => {
    const sbx = await bed.startSandbox({ maxHistoryEvents: 30 });
    await untilState(sbx, 'RUNNING');
    bed.world.hold('slow-exec');
    const slow = await sbx.startUpdate(execUpdate, {
      args: [{ command: commands.hold('slow-exec') }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    const firstRun = (await sbx.describe()).runId;
    // Push history past the limit while the exec holds the rollover back.
    for (let i = 0; (await sbx.describe()).historyLength <= 45; i++) {
      await sbx.signal(renewLeaseSignal, { ttlSeconds: 120 + i });
    }
    const renewed = await sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 600 }] });
    expect((await sbx.describe()).runId).toBe(firstRun);

    bed.world.release('slow-exec');
    expect(await outcome(slow.result())).toMatchObject({ value: { exitCode: 0 } });
    const latest = bed.env.client.workflow.getHandle(sandboxWorkflowId(sbx.id));
    await until(async () => (await latest.describe()).runId !== firstRun);
    const status = await latest.query(getStatus);
    expect(status).toMatchObject({ state: 'RUNNING', expiresAt: renewed.expiresAt, isolation: 'fake' });
    expect(bed.world.called('createSandbox', sbx.id)).toBe(1);
    expect(bed.world.called('destroySandbox', sbx.id)).toBe(0);

    await latest.signal(destroySignal, {});
    await latest.result();
    // One sequence across runs: the registry saw each state once, in order.
    expect(bed.world.states(sbx.id).filter((s) => s !== 'RUNNING')).toEqual([
      'REQUESTED',
      'PROVISIONING',
      'BOOTING',
      'DESTROYING',
      'DESTROYED',
    ]);
    const seqs = bed.world.transitions.filter((e) => e.sandboxId === sbx.id).map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});

describe('end reason', () => {
  /** The SandboxEndReason search attribute of a closed sandbox workflow. */
  const endReason = async (sbx: SandboxHandle) => {
    await sbx.result();
    return (await sbx.describe()).typedSearchAttributes.get(SandboxEndReason);
  };

  it('is set on expiry, next to the state (recorded as fixtures/end-reason-1.bin with RECORD_FIXTURES=1)', async () => {
    const sbx = await bed.startSandbox({ ttlSeconds: 60 });
    await untilState(sbx, 'RUNNING');
    await sbx.executeUpdate(execUpdate, { args: [{ command: ['echo', 'hi'] }] });
    await sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 120 }] });
    expect(await endReason(sbx)).toBe(EndReason.LeaseExpired);
    expect((await sbx.describe()).typedSearchAttributes.get(SandboxState)).toBe('DESTROYED');
    if (process.env.RECORD_FIXTURES) {
      const history = await sbx.fetchHistory();
      writeFileSync(
        path.join(FIXTURES, 'end-reason-1.bin'),
        proto.temporal.api.history.v1.History.encode(history).finish(),
      );
    }
  });

  it.each([
    ['max lifetime', { ttlSeconds: 60, maxLifetimeSeconds: 60 }, EndReason.MaxLifetime],
    ['a job that fails', { job: job([commands.exit(2)]) }, 'job failed'],
    ['a create that fails for good', { id: `sbx-bad-spec-${Date.now()}` }, 'create failed: bad_spec'],
  ] as const)('names %s', async (_, request, expected) => {
    if ('id' in request) bed.world.failCreate.set(request.id, 'bad_spec');
    expect(await endReason(await bed.startSandbox(request))).toBe(expected);
  });

  it.each([
    ['the API (it names who asked)', { reason: 'done (destroy requested by alice)', requestedBy: 'alice' }],
    ['a session', { reason: 'session ended' }],
    ['a bare signal (Temporal UI, CLI)', {}],
  ])('tells a destroy by %s from the others', async (_, signal) => {
    const sbx = await bed.startSandbox({ ttlSeconds: 3600 });
    await untilState(sbx, 'RUNNING');
    await sbx.signal(destroySignal, signal);
    const expected =
      'requestedBy' in signal
        ? EndReason.DestroyedByApi
        : 'reason' in signal
          ? EndReason.SessionEnded
          : EndReason.DestroyRequested;
    expect(await endReason(sbx)).toBe(expected);
  });
});

// Recorded at commit 0e54690 over the fake activities (test/unit/workflows/fixtures), one per
// path through the sandbox and session workflows; every run of a continued-as-new chain is a file.
// end-reason-1.bin came later, from the 'end reason' test above (RECORD_FIXTURES=1): a run with the
// end-reason-search-attribute-v1 patch, activity and timer summaries.
// data-plane-1.bin: a streamed exec, a background exec killed, a files update, a destroy (issue 11).
describe('histories recorded before the reshape', () => {
  it('each replays against the current code without nondeterminism', async () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.bin'));
    const histories = files.map((file) => ({
      workflowId: file,
      history: proto.temporal.api.history.v1.History.decode(readFileSync(path.join(FIXTURES, file))),
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: bed.workflowBundle }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(files.length).toBeGreaterThan(10);
    expect(failures).toEqual([]);
  });
});

describe('data plane', () => {
  it('a background exec answers at once, recorded first; kill ends it (137), answering once it has ended', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold('server');
    const { execId } = await sbx.executeUpdate(startExecUpdate, {
      args: [{ command: commands.hold('server'), execId: 'bg-1' }],
    });
    expect(execId).toBe('bg-1');
    expect(bed.world.called('recordExecStart', sbx.id)).toBe(1);
    await until(async () => bed.world.called('execInSandbox', sbx.id) === 1);

    const killed = await sbx.executeUpdate(killExecUpdate, { args: [{ execId }] });
    expect(killed).toEqual({ execId, killed: true });
    const outcomes = bed.world.calls.filter((c) => c.activity === 'recordExecOutcome' && c.id === sbx.id);
    expect(outcomes.map((c) => c.input)).toEqual([{ id: sbx.id, execId, killRequested: true }]);
    // A second kill finds nothing running.
    expect(await sbx.executeUpdate(killExecUpdate, { args: [{ execId }] })).toEqual({ execId, killed: false });
    await sbx.signal(destroySignal, {});
    await sbx.result();
  });

  it('a kill whose command ended before the workflow cancelled it (NOTIFY heard first) answers killed', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold('notified');
    bed.world.killedByNotify.set('bg-n', 'notified');
    await sbx.executeUpdate(startExecUpdate, { args: [{ command: commands.hold('notified'), execId: 'bg-n' }] });
    await until(async () => bed.world.isWaiting('notified'));
    expect(await sbx.executeUpdate(killExecUpdate, { args: [{ execId: 'bg-n' }] })).toEqual({
      execId: 'bg-n',
      killed: true,
    });
    await sbx.signal(destroySignal, {});
    await sbx.result();
  });

  it('a streamed exec killed mid-way answers exit 137; a kill without an execId is refused', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold('stream');
    const streaming = await sbx.startUpdate(execUpdate, {
      args: [{ command: commands.hold('stream'), stream: true, execId: 'st-1' }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    await until(async () => bed.world.called('execInSandbox', sbx.id) === 1);
    // The same exec id cannot start twice while it runs.
    const twice = sbx.executeUpdate(execUpdate, { args: [{ command: ['true'], stream: true, execId: 'st-1' }] });
    expect(await outcome(twice)).toMatchObject({ type: Failure.InvalidArgument });
    expect(await outcome(sbx.executeUpdate(killExecUpdate, { args: [{} as { execId: string }] }))).toMatchObject({
      type: Failure.InvalidArgument,
    });
    await sbx.executeUpdate(killExecUpdate, { args: [{ execId: 'st-1' }] });
    expect(await outcome(streaming.result())).toMatchObject({ value: { exitCode: 137, timedOut: false } });
    await sbx.signal(destroySignal, {});
    await sbx.result();
  });

  it('a destroy during a background exec waits for it and records why it ended', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold('until-destroyed', { ignoresCancel: true });
    await sbx.executeUpdate(startExecUpdate, { args: [{ command: commands.hold('until-destroyed'), execId: 'bg-2' }] });
    await until(async () => bed.world.called('execInSandbox', sbx.id) === 1);
    await sbx.signal(destroySignal, { reason: 'done with it' });
    await until(async () => bed.world.called('destroySandbox', sbx.id) === 1);
    bed.world.release('until-destroyed'); // the fake answers 137 once its VM is gone
    expect(await sbx.result()).toMatchObject({ state: 'DESTROYED' });
    const outcome = bed.world.calls.find((c) => c.activity === 'recordExecOutcome' && c.id === sbx.id);
    expect(outcome?.input).toMatchObject({ execId: 'bg-2', error: expect.stringContaining('(done with it)') });
  });

  it('a background exec holds the rollover back until it ends', async () => {
    const sbx = await bed.startSandbox({ maxHistoryEvents: 30 });
    await untilState(sbx, 'RUNNING');
    bed.world.hold('long');
    await sbx.executeUpdate(startExecUpdate, { args: [{ command: commands.hold('long'), execId: 'bg-3' }] });
    const firstRun = (await sbx.describe()).runId;
    for (let i = 0; (await sbx.describe()).historyLength <= 45; i++) {
      await sbx.signal(renewLeaseSignal, { ttlSeconds: 120 + i });
    }
    await sbx.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 600 }] });
    expect((await sbx.describe()).runId).toBe(firstRun);
    bed.world.release('long');
    const latest = bed.env.client.workflow.getHandle(sandboxWorkflowId(sbx.id));
    await until(async () => (await latest.describe()).runId !== firstRun);
    await latest.signal(destroySignal, {});
    await latest.result();
  });

  it('files: refused outside RUNNING naming the state, a missing path is path_not_found, destroy named', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    const list = await sbx.executeUpdate(filesUpdate, { args: [{ op: 'list', path: '/work', limit: 10 }] });
    expect(list).toEqual({ op: 'list', path: '/work', entries: [], truncated: false });
    const missing = sbx.executeUpdate(filesUpdate, { args: [{ op: 'read', path: 'missing', transferId: 't1' }] });
    expect(await outcome(missing)).toMatchObject({
      type: Failure.PathNotFound,
      message: expect.stringContaining('missing'),
    });

    bed.world.hold(`files:${sbx.id}`, { ignoresCancel: true });
    // Settled into an outcome at once: it may fail before the test comes to await it.
    const held = outcome(sbx.executeUpdate(filesUpdate, { args: [{ op: 'remove', path: 'hold', recursive: false }] }));
    await until(async () => bed.world.called('fileOp', sbx.id) === 3);
    await sbx.signal(destroySignal, { reason: 'bye' });
    await until(async () => bed.world.called('destroySandbox', sbx.id) === 1);
    bed.world.release(`files:${sbx.id}`);
    expect(await held).toMatchObject({
      type: Failure.InvalidState,
      message: expect.stringContaining('(bye)'),
    });
    await sbx.result();

    const stopped = await bed.startSandbox();
    await untilState(stopped, 'RUNNING');
    await stopped.executeUpdate(stopUpdate);
    const refused = stopped.executeUpdate(filesUpdate, { args: [{ op: 'mkdir', path: 'a', parents: true }] });
    expect(await outcome(refused)).toMatchObject({
      type: Failure.InvalidState,
      message: 'cannot use files in STOPPED state; valid states: RUNNING',
    });
    await stopped.signal(destroySignal, {});
    await stopped.result();
  });

  it('caps streamed and background commands per sandbox (rate_limited), plain execs are not counted', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold('many');
    for (let i = 0; i < MAX_RUNNING_EXECS; i++) {
      await sbx.executeUpdate(startExecUpdate, { args: [{ command: commands.hold('many'), execId: `bg-${i}` }] });
    }
    const refused = sbx.executeUpdate(startExecUpdate, { args: [{ command: ['true'], execId: 'one-too-many' }] });
    expect(await outcome(refused)).toMatchObject({ type: Failure.RateLimited, message: expect.stringMatching(/32/) });
    expect(await sbx.executeUpdate(execUpdate, { args: [{ command: ['exit', '0'] }] })).toMatchObject({ exitCode: 0 });
    bed.world.release('many');
    await sbx.signal(destroySignal, {});
    await sbx.result();
  });

  it('records as interrupted a command that has not ended 30 s after its sandbox was destroyed', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    bed.world.hold('stuck', { ignoresCancel: true });
    await sbx.executeUpdate(startExecUpdate, { args: [{ command: commands.hold('stuck'), execId: 'bg-stuck' }] });
    await until(async () => bed.world.called('execInSandbox', sbx.id) === 1);
    await sbx.signal(destroySignal, { reason: 'gone' });
    expect(await sbx.result()).toMatchObject({ state: 'DESTROYED' });
    const interrupted = bed.world.calls.find((c) => c.activity === 'recordExecInterrupted' && c.id === sbx.id);
    expect(interrupted?.input).toMatchObject({ execId: 'bg-stuck', reason: expect.stringContaining('(gone)') });
    await bed.endOrphanedCommand('stuck');
  }, 60_000); // time does not skip while the stuck activity runs: the 30 s pass for real

  it('replays a run that used the data plane (fixtures/data-plane-1.bin with RECORD_FIXTURES=1)', async () => {
    const sbx = await bed.startSandbox();
    await untilState(sbx, 'RUNNING');
    await sbx.executeUpdate(execUpdate, { args: [{ command: ['echo', 'streamed'], stream: true, execId: 'st-f' }] });
    bed.world.hold('fixture-bg');
    await sbx.executeUpdate(startExecUpdate, { args: [{ command: commands.hold('fixture-bg'), execId: 'bg-f' }] });
    await until(async () => bed.world.called('execInSandbox', sbx.id) === 2);
    await sbx.executeUpdate(killExecUpdate, { args: [{ execId: 'bg-f' }] });
    await sbx.executeUpdate(filesUpdate, { args: [{ op: 'mkdir', path: 'out', parents: true }] });
    await sbx.signal(destroySignal, { reason: 'fixture' });
    await sbx.result();
    const history = await sbx.fetchHistory();
    if (process.env.RECORD_FIXTURES) {
      writeFileSync(
        path.join(FIXTURES, 'data-plane-1.bin'),
        proto.temporal.api.history.v1.History.encode(history).finish(),
      );
    }
    const replayed = await Worker.runReplayHistory({ workflowBundle: bed.workflowBundle }, history, sbx.id);
    expect(replayed).toBeUndefined();
  });
});
