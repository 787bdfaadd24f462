// Nothing leaks: each drift kind the reaper fixes, prune's dry run, force-destroy from every
// state, bulk destroy, sessions (both end paths, and a terminated session) and jobs.
import { mkdirSync, mkdtempSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusyError } from '../hypervisors/errors';
import { ProcessHypervisor } from '../hypervisors/process/driver';
import type { OpContext, VmInfo } from '../hypervisors/types';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';
import { sandboxWorkflowId, sessionWorkflowId } from '../workflows/ids';

/** The real process driver with switches: hold sandboxes in BOOTING, make the sandbox workflow's destroys fail. */
class ControlledDriver extends ProcessHypervisor {
  holdReady = false;
  /** Fails destroys asked by a sandbox's own workflow; a force destroy's still succeed. */
  failWorkflowDestroy = false;
  createDelayMs = 0;
  override async create(spec: Parameters<ProcessHypervisor['create']>[0]): Promise<VmInfo> {
    if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
    return super.create(spec);
  }
  override async waitReady(id: string, timeoutMs: number, ctx?: OpContext): Promise<void> {
    while (this.holdReady) {
      ctx?.signal?.throwIfAborted();
      ctx?.progress?.('held by the test');
      await new Promise((r) => setTimeout(r, 100));
    }
    return super.waitReady(id, timeoutMs, ctx);
  }
  override async destroy(id: string): Promise<{ existed: boolean }> {
    if (this.failWorkflowDestroy && Context.current().info.workflowType === 'sandboxWorkflow') {
      throw new BusyError(`hypervisor busy (test) while destroying ${id}`);
    }
    return super.destroy(id);
  }
}
const controlled = new ControlledDriver({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'hourglass-ctl-')) });

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ drivers: { controlled } });
});
afterAll(() => h?.close());

const create = (body: Record<string, unknown>) =>
  h.api<SandboxStatus>('POST', '/v1/sandboxes', body).then((r) => r.body);
const state = async (id: string) => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body;
const prune = (body: Record<string, unknown> = {}) => h.api('POST', '/v1/sandboxes/prune', body).then((r) => r.body);
const vm = (id: string, driver = 'process') => h.hypervisors.get(driver).describe(id);
const untilState = (id: string, want: string, timeoutMs = 15_000) =>
  eventually(async () => {
    const s = await state(id);
    return s.state === want ? s : undefined;
  }, timeoutMs);
const itemFor = (report: { items: { id: string; drift: string; action: string }[] }, id: string) =>
  report.items.find((i) => i.id === id);

describe('reaper (prune)', () => {
  it('dry run reports drifts and changes nothing; a real run destroys a VM that has no workflow', async () => {
    const orphan: VmInfo = await h.hypervisors.get('process').create({ id: `orphan-${Date.now()}`, labels: {} });
    const dry = await prune({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(itemFor(dry, orphan.id)).toEqual({ id: orphan.id, drift: 'orphan_vm', action: 'would destroy vm' });
    expect(await vm(orphan.id)).not.toBeNull();

    const real = await prune();
    expect(itemFor(real, orphan.id)).toEqual({
      id: orphan.id,
      drift: 'orphan_vm',
      action: 'destroyed vm, marked DESTROYED',
    });
    expect(real.counts.orphan_vm).toBeGreaterThanOrEqual(1);
    expect(await vm(orphan.id)).toBeNull();
    const runs = await h.pool.query('SELECT counts, items FROM reaper_runs WHERE id = $1', [real.runId]);
    expect(runs.rows[0].counts.orphan_vm).toBeGreaterThanOrEqual(1);
  });

  it('never touches what Hourglass did not create', async () => {
    const foreign = path.join(h.stateDir, 'process', 'not-ours');
    mkdirSync(foreign, { recursive: true });
    const report = await prune();
    expect(itemFor(report, 'not-ours')).toBeUndefined();
    expect(existsSync(foreign)).toBe(true);
  });

  it('a row whose workflow was terminated: destroys the VM and marks the row DESTROYED', async () => {
    const sbx = await create({ ttlSeconds: 60 });
    await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).terminate('test: finally never runs');
    const report = await prune();
    expect(itemFor(report, sbx.id)).toEqual({
      id: sbx.id,
      drift: 'closed_workflow_row',
      action: 'destroyed vm, marked DESTROYED',
    });
    expect(await vm(sbx.id)).toBeNull();
    expect(await state(sbx.id)).toMatchObject({ state: 'DESTROYED', destroyReason: 'reaper: workflow closed' });
  });

  it('an open workflow whose VM vanished is told so and ends DESTROYED with reason "vm lost"', async () => {
    const sbx = await create({ ttlSeconds: 60 });
    await h.hypervisors.get('process').destroy(sbx.id); // someone removed it behind our back
    const report = await prune();
    expect(itemFor(report, sbx.id)).toEqual({ id: sbx.id, drift: 'vm_lost', action: 'signalled vm lost' });
    expect((await untilState(sbx.id, 'DESTROYED')).destroyReason).toBe('vm lost');
  });

  it('a workflow stuck past expiresAt + grace is force-destroyed', async () => {
    const sbx = await create({ ttlSeconds: 2 });
    // A bad deploy: the worker can no longer run sandbox workflows, their tasks fail forever.
    await h.stopWorker();
    await h.startWorker({ workflowsPath: new URL('./support/reaper-only-workflows.ts', import.meta.url).pathname });
    try {
      await new Promise((r) => setTimeout(r, Date.parse(sbx.expiresAt!) + 1500 - Date.now()));
      expect(await vm(sbx.id)).not.toBeNull();
      const report = await prune();
      expect(itemFor(report, sbx.id)).toEqual({
        id: sbx.id,
        drift: 'overdue',
        action: 'terminated workflow, destroyed vm',
      });
      expect(await vm(sbx.id)).toBeNull();
      expect((await h.pool.query('SELECT state, destroy_reason FROM sandboxes WHERE id=$1', [sbx.id])).rows[0]).toEqual(
        {
          state: 'DESTROYED',
          destroy_reason: 'force destroy (reaper: lease overdue)',
        },
      );
    } finally {
      await h.stopWorker();
      await h.startWorker();
    }
  });

  it("plans inside its activity: the run's history carries the drifts, never the whole inventory", async () => {
    const orphan = await h.hypervisors.get('process').create({ id: `orphan-plan-${Date.now()}`, labels: {} });
    const report = await prune({ dryRun: true });
    expect(itemFor(report, orphan.id)).toMatchObject({ drift: 'orphan_vm' });
    const runs = h.client.workflow.list({
      query: `WorkflowType = 'reaperWorkflow' AND WorkflowId STARTS_WITH 'reaper:manual:'`,
    });
    const ids: string[] = [];
    for await (const w of runs) ids.push(w.workflowId);
    const latest = ids.sort().at(-1)!;
    const history = await h.client.workflow.getHandle(latest).fetchHistory();
    const scheduled = (history.events ?? []).flatMap(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    expect(scheduled).toContain('planDrifts');
    expect(scheduled).not.toContain('takeInventory');
    await h.hypervisors.get('process').destroy(orphan.id);
  });

  it('olderThanSeconds spares young sandboxes', async () => {
    const sbx = await create({ ttlSeconds: 60 });
    await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).terminate('test');
    expect(itemFor(await prune({ olderThanSeconds: 3600 }), sbx.id)).toBeUndefined();
    expect(itemFor(await prune({ olderThanSeconds: 0 }), sbx.id)?.drift).toBe('closed_workflow_row');
  });
});

describe('force-destroy from any state', () => {
  const force = (id: string) => h.api('POST', `/v1/sandboxes/${id}/destroy`, { force: true });

  it('REQUESTED (no worker can run it)', async () => {
    await h.stopWorker();
    try {
      const sbx = await create({ ttlSeconds: 60, wait: false });
      expect(sbx.state).toBe('REQUESTED');
      // A worker that cannot run sandbox workflows: this one stays REQUESTED for ever.
      await h.startWorker({ workflowsPath: new URL('./support/reaper-only-workflows.ts', import.meta.url).pathname });
      const res = await force(sbx.id);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ state: 'DESTROYED', destroyReason: 'force destroy by local', vmExisted: false });
      expect(await state(sbx.id)).toMatchObject({
        state: 'DESTROYED',
        destroyReason: 'force destroy by local (vm already gone)',
      });
    } finally {
      await h.stopWorker();
      await h.startWorker();
    }
  });

  it('BOOTING (guest never answers) and STOPPED', async () => {
    controlled.holdReady = true;
    try {
      const booting = await create({ ttlSeconds: 60, driver: 'controlled', wait: false });
      await untilState(booting.id, 'BOOTING');
      expect((await force(booting.id)).body).toMatchObject({ state: 'DESTROYED', vmExisted: true });
      expect(await vm(booting.id, 'controlled')).toBeNull();
    } finally {
      controlled.holdReady = false;
    }
    const stopped = await create({ ttlSeconds: 60 });
    await h.api('POST', `/v1/sandboxes/${stopped.id}/stop`);
    expect((await force(stopped.id)).body).toMatchObject({ state: 'DESTROYED', vmExisted: true });
    expect(await vm(stopped.id)).toBeNull();
  });

  it('DESTROYING (the hypervisor keeps failing) and DESTROYED (idempotent)', async () => {
    const sbx = await create({ ttlSeconds: 60, driver: 'controlled' });
    controlled.failWorkflowDestroy = true;
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
    await untilState(sbx.id, 'DESTROYING');
    // The workflow's retries keep failing (none can win a race with the force destroy); force's succeeds.
    const res = await force(sbx.id).finally(() => (controlled.failWorkflowDestroy = false));
    expect(res.body).toMatchObject({ state: 'DESTROYED', vmExisted: true });
    expect(await vm(sbx.id, 'controlled')).toBeNull();
    const again = await force(sbx.id);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ state: 'DESTROYED', vmExisted: false });
  });
});

describe('destroy while creating', () => {
  it('a destroy request that arrives while create runs waits for it, then destroys what it made', async () => {
    controlled.createDelayMs = 1500;
    try {
      const sbx = await create({ ttlSeconds: 60, driver: 'controlled', wait: false });
      await untilState(sbx.id, 'PROVISIONING');
      expect((await h.api('DELETE', `/v1/sandboxes/${sbx.id}`)).status).toBe(202);
      const done = await untilState(sbx.id, 'DESTROYED');
      expect(done.destroyReason).toBe('destroy requested by local');
      expect(await vm(sbx.id, 'controlled')).toBeNull();
    } finally {
      controlled.createDelayMs = 0;
    }
  });
});

describe('bulk destroy', () => {
  it('destroys by label and by ids, reporting each id, failures included', async () => {
    const label = `bulk-${Date.now()}`;
    const a = await create({ ttlSeconds: 60, labels: { batch: label } });
    const b = await create({ ttlSeconds: 60, labels: { batch: label } });
    await eventually(
      async () => (await h.api('GET', `/v1/sandboxes?label=batch=${label}&state=RUNNING`)).body.items.length === 2,
    );
    const res = await h.api('POST', '/v1/sandboxes/destroy', { label: `batch=${label}`, ids: ['sbx-does-not-exist'] });
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(3);
    expect(res.body.failed).toBe(1);
    expect(res.body.items).toEqual(
      expect.arrayContaining([
        { id: a.id, ok: true, state: 'RUNNING' },
        { id: b.id, ok: true, state: 'RUNNING' },
        {
          id: 'sbx-does-not-exist',
          ok: false,
          error: { code: 'not_found', message: 'sandbox sbx-does-not-exist not found' },
        },
      ]),
    );
    await untilState(a.id, 'DESTROYED');
    await untilState(b.id, 'DESTROYED');
    expect((await h.api('POST', '/v1/sandboxes/destroy', {})).status).toBe(400);
  });
});

describe('sessions', () => {
  it('deleting a session destroys its sandboxes with reason "session ended"', async () => {
    const { body: session } = await h.api('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 60 });
    const s1 = await create({ ttlSeconds: 60, sessionId: session.id });
    const s2 = await create({ ttlSeconds: 60, sessionId: session.id });
    await eventually(async () => (await h.api('GET', `/v1/sessions/${session.id}`)).body.sandboxes.length === 2);
    expect((await h.api('DELETE', `/v1/sessions/${session.id}`)).status).toBe(202);
    for (const s of [s1, s2]) expect((await untilState(s.id, 'DESTROYED')).destroyReason).toBe('session ended');
    const late = await h.api('POST', '/v1/sandboxes', { ttlSeconds: 60, sessionId: session.id });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toMatch(/session .* has ended/);
  });

  it('a lapsed heartbeat ends the session; heartbeats keep it alive', async () => {
    const { body: session } = await h.api('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 2 });
    const sbx = await create({ ttlSeconds: 60, sessionId: session.id });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      expect((await h.api('POST', `/v1/sessions/${session.id}/heartbeat`)).status).toBe(200);
    }
    expect((await state(sbx.id)).state).toBe('RUNNING');
    const done = await untilState(sbx.id, 'DESTROYED', 10_000);
    expect(done.destroyReason).toBe('session ended');
    expect((await h.api('GET', `/v1/sessions/${session.id}`)).body).toMatchObject({
      state: 'ENDED',
      endReason: 'heartbeat lapsed',
    });
  });

  it('a terminated session still does not leak: the reaper ends its sandboxes', async () => {
    const { body: session } = await h.api('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 600 });
    const sbx = await create({ ttlSeconds: 60, sessionId: session.id });
    await h.client.workflow.getHandle(sessionWorkflowId(session.id)).terminate('test: no cleanup code runs');
    const report = await prune();
    expect(itemFor(report, sbx.id)).toEqual({
      id: sbx.id,
      drift: 'session_gone',
      action: 'signalled destroy (session ended)',
    });
    expect((await untilState(sbx.id, 'DESTROYED')).destroyReason).toBe('session ended');
  });
});

describe('jobs', () => {
  it('runs the commands in order, records each result, then destroys the sandbox', async () => {
    const res = await h.api('POST', '/v1/jobs', {
      commands: [
        ['sh', '-c', 'echo one > f'],
        ['cat', 'f'],
        ['sh', '-c', 'exit 0'],
      ],
      ttlSeconds: 60,
    });
    expect(res.status).toBe(201);
    expect(res.body.state).toBe('QUEUED');
    const job = await eventually(async () => {
      const j = (await h.api('GET', `/v1/jobs/${res.body.id}`)).body;
      return j.state === 'COMPLETED' && j.sandboxState === 'DESTROYED' ? j : undefined;
    });
    expect(
      job.steps.map((s: { command: string[]; exitCode: number; stdout: string }) => [
        s.command[0],
        s.exitCode,
        s.stdout,
      ]),
    ).toEqual([
      ['sh', 0, ''],
      ['cat', 0, 'one\n'],
      ['sh', 0, ''],
    ]);
    expect((await state(res.body.id)).destroyReason).toBe('job completed');
  });

  it(
    'stops at the first failing command (FAILED), ' +
      'times out with the lease (TIMEOUT), keeps the sandbox with keepalive',
    async () => {
      const failed = (await h.api('POST', '/v1/jobs', { commands: [['false'], ['echo', 'never']], ttlSeconds: 60 }))
        .body;
      const slow = (await h.api('POST', '/v1/jobs', { commands: [['sleep', '30']], ttlSeconds: 2 })).body;
      const kept = (await h.api('POST', '/v1/jobs', { commands: [['true']], ttlSeconds: 60, keepalive: true })).body;
      const f = await eventually(async () =>
        (await h.api('GET', `/v1/jobs/${failed.id}`)).body.state === 'FAILED'
          ? (await h.api('GET', `/v1/jobs/${failed.id}`)).body
          : undefined,
      );
      expect(f.steps).toHaveLength(1);
      expect(f.steps[0].exitCode).toBe(1);
      const t = await eventually(async () =>
        (await h.api('GET', `/v1/jobs/${slow.id}`)).body.sandboxState === 'DESTROYED'
          ? (await h.api('GET', `/v1/jobs/${slow.id}`)).body
          : undefined,
      );
      expect(t.state).toBe('TIMEOUT');
      const k = await eventually(async () =>
        (await h.api('GET', `/v1/jobs/${kept.id}`)).body.state === 'COMPLETED'
          ? (await h.api('GET', `/v1/jobs/${kept.id}`)).body
          : undefined,
      );
      expect(k.sandboxState).toBe('RUNNING');
      await h.api('DELETE', `/v1/sandboxes/${kept.id}`);
    },
  );

  it('a job whose sandbox cannot be created ends FAILED with the reason, not QUEUED forever', async () => {
    const res = await h.api('POST', '/v1/jobs', { commands: [['true']], ttlSeconds: 60, template: 'no-such-template' });
    expect(res.status).toBe(201);
    const job = await eventually(async () => {
      const j = (await h.api('GET', `/v1/jobs/${res.body.id}`)).body;
      return j.sandboxState === 'DESTROYED' ? j : undefined;
    });
    expect(job.state).toBe('FAILED');
    expect(job.error).toMatch(/^create failed: unknown template 'no-such-template'/);
    expect(job.steps).toEqual([]);
  });

  it('honours Idempotency-Key: same job for the same body, 422 for another', async () => {
    const headers = { 'idempotency-key': `job-${Date.now()}` };
    const body = { commands: [['true']], ttlSeconds: 60, keepalive: true };
    const a = await h.api('POST', '/v1/jobs', body, headers);
    const b = await h.api('POST', '/v1/jobs', body, headers);
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body.id).toBe(a.body.id);
    expect((await h.api('POST', '/v1/jobs', { ...body, ttlSeconds: 61 }, headers)).status).toBe(422);
    await h.api('DELETE', `/v1/sandboxes/${a.body.id}`);
  });
});
