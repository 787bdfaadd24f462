// What an operator sees in the Temporal UI, on a real Temporal server through the real API: each
// workflow's static summary, the summaries on a sandbox's activities and lease timer, the end reason
// as a search attribute the list filters by, and the README's example queries (UI and CLI) running.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ensureSearchAttributes } from '../worker/ensure-search-attributes';
import { ensureReaperSchedule } from '../worker/reaper-schedule';
import { findTemporalCli } from '../worker/temporal-server';
import { EndReason } from '../workflows/end-reasons';
import { forceDestroyWorkflowId, sandboxWorkflowId, sessionWorkflowId } from '../workflows/ids';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, testDataConverter, type Harness } from './support/harness';

const ALICE = `alice-ui-${Date.now()}`;
const { EventType } = proto.temporal.api.enums.v1;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ tokens: [{ owner: 'alice', role: 'user', token: ALICE }] });
});
afterAll(() => h?.close());

const create = async (body: Record<string, unknown>) => {
  const res = await h.api<SandboxStatus>('POST', '/v1/sandboxes', body);
  expect(res.status).toBe(201);
  return res.body;
};
const untilDestroyed = (id: string) =>
  eventually(async () => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body.state === 'DESTROYED', 30_000);

/** Payloads, summaries included, are encrypted by the project's codec: decode as the UI does. */
async function decodeText(payload: Payload | null | undefined): Promise<string | undefined> {
  if (!payload) return undefined;
  const [plain] = await testDataConverter().payloadCodecs![0]!.decode([payload]);
  return defaultPayloadConverter.fromPayload<string>(plain!);
}

/** Workflow ids a visibility query finds (at most `max`). */
async function listIds(query: string, max = 2000): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of h.client.workflow.list({ query })) {
    ids.push(w.workflowId);
    if (ids.length >= max) break;
  }
  return ids;
}

/** Visibility is eventually consistent: polls until the query finds `workflowId`. */
const untilListed = (query: string, workflowId: string) =>
  eventually(async () => (await listIds(`WorkflowId="${workflowId}" AND ${query}`)).includes(workflowId), 30_000);

/** The fenced blocks of the README's Temporal UI section, by language. */
function readmeBlocks(lang: string): string[] {
  const readme = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.split('\n## Temporal UI\n')[1]!.split('\n## ')[0]!;
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].filter((m) => m[1] === lang);
  return blocks.flatMap((m) => m[2]!.split('\n').filter((line) => line.trim()));
}

describe('Temporal UI', () => {
  let expired: SandboxStatus;
  let destroyed: SandboxStatus;
  let forced: SandboxStatus;

  beforeAll(async () => {
    // One sandbox whose lease runs out after a command, one destroyed through the API, one forced.
    expired = await create({ ttlSeconds: 8, labels: { suite: 'temporal-ui' } });
    const ls = await h.api('POST', `/v1/sandboxes/${expired.id}/exec`, { command: ['ls', '-la'] });
    expect(ls.status).toBe(200);
    [destroyed, forced] = await Promise.all([create({ ttlSeconds: 600 }), create({ ttlSeconds: 600 })]);
    expect((await h.api('DELETE', `/v1/sandboxes/${destroyed.id}`)).status).toBe(202);
    expect((await h.api('DELETE', `/v1/sandboxes/${forced.id}`, { force: true })).status).toBe(202);
    await Promise.all([expired, destroyed, forced].map((s) => untilDestroyed(s.id)));
  }, 90_000);

  it('a sandbox workflow shows id · driver · owner · ttl as its static summary, the rest in its details', async () => {
    const d = await h.client.workflow.getHandle(sandboxWorkflowId(expired.id)).describe();
    expect(await d.staticSummary()).toBe(`${expired.id} · process · alice · ttl 8 s`);
    expect(await d.staticDetails()).toContain('**labels** suite=temporal-ui');
  });

  it("each step of the sandbox's history carries a summary: activities, the lease timer, the destroy", async () => {
    const history = await h.client.workflow.getHandle(sandboxWorkflowId(expired.id)).fetchHistory();
    const summaries: { type: string; summary: string }[] = [];
    for (const e of history.events ?? []) {
      const summary = await decodeText(e.userMetadata?.summary);
      if (summary) summaries.push({ type: EventType[e.eventType!]!, summary });
    }
    const scheduled = 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED';
    expect(summaries).toEqual(
      expect.arrayContaining([
        { type: scheduled, summary: 'create sandbox on process' },
        { type: scheduled, summary: 'wait for the guest (up to 60 s)' },
        { type: scheduled, summary: "exec 'ls -la'" },
        { type: 'EVENT_TYPE_TIMER_STARTED', summary: `lease until ${expired.expiresAt}` },
        // The destroy runs first as a local activity: its summary is on the marker.
        { type: 'EVENT_TYPE_MARKER_RECORDED', summary: 'destroy: lease expired' },
      ]),
    );
  });

  it('the end reason is a search attribute the list filters by; force destroy sets it on its workflow', async () => {
    await untilListed(`SandboxEndReason="${EndReason.LeaseExpired}"`, sandboxWorkflowId(expired.id));
    await untilListed(`SandboxEndReason="${EndReason.DestroyedByApi}"`, sandboxWorkflowId(destroyed.id));
    await untilListed(`SandboxEndReason="${EndReason.ForceDestroyed}"`, forceDestroyWorkflowId(forced.id));
    const force = await h.client.workflow.getHandle(forceDestroyWorkflowId(forced.id)).describe();
    expect(await force.staticSummary()).toMatch(new RegExp(`^force destroy ${forced.id} · process · force destroy by`));
    // The sandbox's own workflow was terminated before it could record anything.
    const terminated = await h.client.workflow.getHandle(sandboxWorkflowId(forced.id)).describe();
    expect(terminated.status.name).toBe('TERMINATED');
  });

  it('every query the README shows runs, and those about these sandboxes find them', async () => {
    const queries = readmeBlocks('text');
    expect(queries.length).toBeGreaterThanOrEqual(5);
    const found = new Map<string, string[]>();
    for (const query of queries) found.set(query, await listIds(query));
    // Visibility has caught up (previous test): the queries that name these sandboxes' facts find them.
    expect(found.get('SandboxEndReason="lease expired"')).toContain(sandboxWorkflowId(expired.id));
    expect(found.get('SandboxOwner="alice"')).toEqual(
      expect.arrayContaining([expired, destroyed, forced].map((s) => sandboxWorkflowId(s.id))),
    );
    expect(found.get('SandboxEndReason="force destroyed"')).toContain(forceDestroyWorkflowId(forced.id));
    expect(found.get('WorkflowType="sandboxWorkflow" AND ExecutionStatus="Terminated"')).toContain(
      sandboxWorkflowId(forced.id),
    );
  });

  it("the README's `temporal workflow list/count --query` lines run with the Temporal CLI", async () => {
    const cli = await findTemporalCli(path.resolve('.hourglass'));
    const lines = readmeBlocks('sh').filter((l) => l.startsWith('temporal workflow '));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) {
      const [, command, query] = /^temporal workflow (list|count) --query '([^']+)'$/.exec(line)!;
      const args = ['workflow', command!, '--address', inject('temporalAddress'), '--query', query!];
      const { stdout } = await promisify(execFile)(cli, [...args, '--output', 'json'], { maxBuffer: 64 << 20 });
      if (command === 'list') expect(stdout).toContain(sandboxWorkflowId(expired.id));
      else expect(JSON.parse(stdout)).toHaveProperty('count');
    }
  });

  it('a session and the reaper schedule show their summaries too', async () => {
    const session = await h.api('POST', '/v1/sessions', { heartbeatTimeoutSeconds: 60 });
    expect(session.status).toBe(201);
    const sd = await h.client.workflow.getHandle(sessionWorkflowId(session.body.id)).describe();
    expect(await sd.staticSummary()).toBe(`${session.body.id} · session · alice · heartbeat 60 s`);
    await h.api('DELETE', `/v1/sessions/${session.body.id}`);

    const scheduleId = `ui-test-${h.taskQueue}`;
    await ensureReaperSchedule(h.client, {
      taskQueue: h.taskQueue,
      intervalSeconds: 3600,
      graceSeconds: 30,
      scheduleId,
    });
    const schedule = h.client.schedule.getHandle(scheduleId);
    try {
      const { action } = await schedule.describe();
      expect(action).toMatchObject({ staticSummary: 'reaper · every 3600 s · grace 30 s' });
    } finally {
      await schedule.delete();
    }
  });

  it('a namespace without SandboxEndReason is refused at start-up with the command to add it', async () => {
    // A namespace of its own: custom search attributes are per namespace, and this one has none.
    const namespace = `ui-test-${h.taskQueue}`;
    const connection = h.client.connection as Connection;
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    const check = (addMissing: boolean) => ensureSearchAttributes(connection, namespace, { addMissing, log: () => {} });
    const refusal = await eventually(() =>
      check(false).then(
        () => undefined,
        (err: Error) => err,
      ),
    );
    expect(refusal.message).toContain('SandboxEndReason');
    expect(refusal.message).toContain(
      `temporal operator search-attribute create --namespace ${namespace} --name SandboxEndReason --type Keyword`,
    );
    // The embedded server's path: added, after which the check passes.
    await check(true);
    await eventually(() => check(false).then(() => true));
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    expect(Object.keys(customAttributes ?? {})).toEqual(
      expect.arrayContaining(ALL_SEARCH_ATTRIBUTES.map((a) => a.name)),
    );
  });
});
