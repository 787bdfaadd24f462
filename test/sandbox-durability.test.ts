// What must hold when things go wrong: a worker restart mid-lease, history growth
// (continue-as-new), and a create that fails after it already made part of the sandbox.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadSpecError } from '../hypervisors/errors';
import { ProcessHypervisor } from '../hypervisors/process/driver';
import type { SandboxSpec, VmInfo } from '../hypervisors/types';
import { execUpdate, getStatus, renewLeaseSignal, renewLeaseUpdate } from '../workflows/messages';
import { sandboxWorkflow } from '../workflows/sandbox';
import type { SandboxStatus } from '../workflows/types';
import { WorkflowUpdateStage } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../worker/worker';
import { findProcesses } from '../hypervisors/common/process-table';
import { gone } from './support/process-drivers';
import { eventually, settledEvents, startHarness, type Harness, testDataConverter } from './support/harness';
import { sandboxWorkflowId, sessionWorkflowId } from '../workflows/ids';

/** A real process driver whose create makes the sandbox and then fails for good. */
class CreateThenFail extends ProcessHypervisor {
  override async create(spec: SandboxSpec): Promise<VmInfo> {
    await super.create(spec);
    throw new BadSpecError('image checksum mismatch');
  }
}
const flaky = new CreateThenFail({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'hourglass-flaky-')) });

/**
 * A create whose first attempt goes on running after the server has given up on it (timed out,
 * its worker stalled): it is left to finish in the background, as another worker process sharing
 * the state dir (its own driver instance), while the retry runs here.
 */
class LateFirstAttempt extends ProcessHypervisor {
  readonly late = new Map<string, Promise<VmInfo>>();
  private readonly otherWorker: ProcessHypervisor;
  constructor(stateDir: string) {
    super({ stateDir });
    this.otherWorker = new ProcessHypervisor({ stateDir });
  }
  override async create(spec: SandboxSpec): Promise<VmInfo> {
    if (!this.late.has(spec.id)) {
      const attempt = this.otherWorker.create(spec);
      attempt.catch(() => {});
      this.late.set(spec.id, attempt);
      throw new Error('activity attempt timed out (its create still runs)');
    }
    return super.create(spec);
  }
}
const late = new LateFirstAttempt(mkdtempSync(path.join(os.tmpdir(), 'hourglass-late-')));

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ drivers: { flaky, late } });
});
afterAll(() => h?.close());

const state = async (id: string) => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body;

/** A process sandbox whose workflow continues as new after 30 history events, once RUNNING. */
async function startRunningWithShortHistory(id: string) {
  const handle = await h.client.workflow.start(sandboxWorkflow, {
    workflowId: sandboxWorkflowId(id),
    taskQueue: h.taskQueue,
    args: [
      {
        request: {
          id,
          owner: 'local',
          driver: 'process',
          ttlSeconds: 60,
          maxLifetimeSeconds: 600,
          labels: {},
          readyTimeoutSeconds: 30,
          maxHistoryEvents: 30,
        },
      },
    ],
  });
  await eventually(async () => (await handle.query(getStatus)).state === 'RUNNING');
  return handle;
}

describe('durability', () => {
  it('a worker restarted mid-lease still destroys on time', async () => {
    const { body: sbx } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 4 });
    expect(sbx.state).toBe('RUNNING');
    await h.stopWorker();
    await new Promise((r) => setTimeout(r, 1500)); // no worker at all for a while
    await h.startWorker();
    const done = await eventually(async () => {
      const s = await state(sbx.id);
      return s.state === 'DESTROYED' ? s : undefined;
    });
    expect(Date.now() - Date.parse(sbx.expiresAt!)).toBeLessThan(3000);
    expect(done.destroyReason).toBe('lease expired');
    expect(await h.hypervisors.get('process').describe(sbx.id)).toBeNull();
  });

  it('continue-as-new keeps the VM and the lease', async () => {
    const id = `can-${Date.now()}`;
    const handle = await startRunningWithShortHistory(id);
    const before = await h.hypervisors.get('process').describe(id);
    const firstRun = (await handle.describe()).runId;
    // Each renewal adds history; under load several signals may share one workflow task, so keep
    // renewing until the run has rolled over.
    let i = 0;
    await eventually(
      async () => {
        await handle.signal(renewLeaseSignal, { ttlSeconds: 120 + i++ });
        return (await h.client.workflow.getHandle(sandboxWorkflowId(id)).describe()).runId !== firstRun;
      },
      30_000,
      150,
    );
    const latest = h.client.workflow.getHandle(sandboxWorkflowId(id));
    const status = await latest.query(getStatus);
    expect(status.state).toBe('RUNNING');
    expect(Date.parse(status.expiresAt!) - Date.now()).toBeGreaterThan(100_000);
    const after = await h.hypervisors.get('process').describe(id);
    expect(after?.details.holderPid).toBe(before?.details.holderPid);
    expect(after?.state).toBe('running');
    // The registry kept counting events across runs, and nothing was destroyed on the way.
    const events = (await h.api('GET', `/v1/sandboxes/${id}/events`)).body.items as { to: string }[];
    expect(events.map((e) => e.to)).not.toContain('DESTROYING');

    await h.api('DELETE', `/v1/sandboxes/${id}`);
    await eventually(async () => (await state(id)).state === 'DESTROYED');
    expect(await h.hypervisors.get('process').describe(id)).toBeNull();
  });

  it('a pending rollover waits for an exec in flight and keeps taking renewals and execs meanwhile', async () => {
    const id = `can-busy-${Date.now()}`;
    const handle = await startRunningWithShortHistory(id);
    const slowExec = await handle.startUpdate(execUpdate, {
      args: [{ command: ['sh', '-c', 'sleep 6; echo slow'] }],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
    // The run that accepted the exec (the short history may already have rolled over once before).
    const firstRun = (await handle.describe()).runId;
    // Push history past the limit while the slow exec holds the rollover back.
    await eventually(
      async () => {
        await handle.signal(renewLeaseSignal, { ttlSeconds: 120 });
        return (await handle.describe()).historyLength > 45;
      },
      5000,
      100,
    );
    expect((await handle.describe()).runId).toBe(firstRun);

    // An agent renewing its lease (or running more commands) during that wait is served, not told "busy".
    const renewed = await handle.executeUpdate(renewLeaseUpdate, { args: [{ ttlSeconds: 300 }] });
    expect(Date.parse(renewed.expiresAt) - Date.now()).toBeGreaterThan(250_000);
    expect((await handle.executeUpdate(execUpdate, { args: [{ command: ['echo', 'quick'] }] })).stdout).toBe('quick\n');
    expect((await slowExec.result()).stdout).toBe('slow\n');

    await eventually(
      async () => (await h.client.workflow.getHandle(sandboxWorkflowId(id)).describe()).runId !== firstRun,
    );
    expect((await state(id)).state).toBe('RUNNING');
    await h.api('DELETE', `/v1/sandboxes/${id}`);
    await eventually(async () => (await state(id)).state === 'DESTROYED');
    expect(await h.hypervisors.get('process').describe(id)).toBeNull();
  });

  it('signals sent without input (Temporal UI, CLI) are ignored or defaulted, never wedge a workflow', async () => {
    const { body: session } = await h.api('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 300 });
    const { body: inSession } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', {
      ttlSeconds: 300,
      sessionId: session.id,
    });
    const { body: sbx } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 300 });
    const handle = h.client.workflow.getHandle(sandboxWorkflowId(sbx.id));

    await handle.signal('renewLease'); // no input: ignored
    await handle.signal('destroy'); // no input: the default reason
    const done = await eventually(async () => {
      const s = await state(sbx.id);
      return s.state === 'DESTROYED' ? s : undefined;
    });
    expect(done.destroyReason).toBe('destroy requested');

    await h.client.workflow.getHandle(sessionWorkflowId(session.id)).signal('sandboxJoined'); // ignored
    await h.client.workflow.getHandle(sessionWorkflowId(session.id)).signal('end'); // ends the session
    const ended = await eventually(async () => {
      const s = await state(inSession.id);
      return s.state === 'DESTROYED' ? s : undefined;
    });
    expect(ended.destroyReason).toBe('session ended');
  });

  it('a finished history replays without nondeterminism against the current workflow code', async () => {
    const { body: sbx } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 1 });
    await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['true'] });
    const handle = h.client.workflow.getHandle(sandboxWorkflowId(sbx.id));
    await handle.result();
    const history = await handle.fetchHistory();
    const bundle = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    // The history's payloads are encrypted: replay decodes them with the same converter.
    const replay = Worker.runReplayHistory(
      { workflowBundle: bundle, dataConverter: testDataConverter() },
      history,
      sandboxWorkflowId(sbx.id),
    );
    await expect(replay).resolves.toBeUndefined();
  });

  // Recorded with the workflow as it was, protobuf-encoded: every change to what a run records
  // must leave them replayable (patched).
  it.each([
    ['before lean-history-v1 (renewals, exec, destroy; 105 events)', 'sandbox-history-before-lean.bin'],
    ['before local-destroy-v1 (renewal, exec, lease expiry, destroy as an activity)', 'sandbox-history-lean-v1.bin'],
  ])('a history recorded %s replays against the current code', async (_, file) => {
    const history = temporal.api.history.v1.History.decode(
      readFileSync(path.join(import.meta.dirname, 'fixtures', file)),
    );
    const bundle = await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    await expect(
      Worker.runReplayHistory({ workflowBundle: bundle, dataConverter: testDataConverter() }, history),
    ).resolves.toBeUndefined();
  });

  it('a retried create beside its late first attempt leaves one namespace, the one commands run in', async () => {
    const { body: sbx } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 60, driver: 'late' });
    expect(sbx.state).toBe('RUNNING');
    const lateResult = await late.late.get(sbx.id)!;
    const recorded = (await late.describe(sbx.id))!.details;
    // Whichever attempt came first made the holder; the other found it and kept it.
    expect(lateResult.details.holderPid).toBe(recorded.holderPid);
    const holders = await findProcesses(
      (argv) => Boolean(argv[0]?.endsWith('bwrap')) && argv.includes(recorded.dir as string),
    );
    expect(holders.filter((p) => !p.exited).length).toBeLessThanOrEqual(2); // outer bwrap + pid 1 of the namespace
    // The sandbox commands run in is the recorded one: a file written now is still there later.
    await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sh', '-c', 'echo kept > /tmp/mark'] });
    expect((await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['cat', '/tmp/mark'] })).body.stdout).toBe(
      'kept\n',
    );
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
    await eventually(async () => (await state(sbx.id)).state === 'DESTROYED');
    expect(await gone(recorded.holderPid)).toBe(true);
  });

  it('a create that fails after making part of the sandbox ends FAILED and cleans up', async () => {
    const res = await h.api('POST', '/v1/sandboxes', { ttlSeconds: 30, driver: 'flaky' });
    expect(res.status).toBe(400);
    const id = res.body.error.details.sandbox.id as string;
    const done = await eventually(async () => {
      const s = await state(id);
      return s.state === 'DESTROYED' ? s : undefined;
    });
    expect(done.destroyReason).toBe('create failed: image checksum mismatch');
    const events = await settledEvents(h, id, 'DESTROYED');
    expect(events.map((e) => e.to)).toEqual(['REQUESTED', 'PROVISIONING', 'FAILED', 'DESTROYING', 'DESTROYED']);
    expect(await flaky.describe(id)).toBeNull();
  });
});
