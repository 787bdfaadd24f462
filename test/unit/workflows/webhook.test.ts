// The webhook workflow in skipped time over fake activities: it delivers in order, continues as new
// every `eventsPerRun` events carrying its cursor (no event lost or sent twice across runs), a
// failing delivery is settled and the cursor moves on, and a recorded history still replays.
// RECORD_FIXTURES=1 writes the first run's history as fixtures/webhook-1.bin.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookBatch } from '../../../activities/webhooks';
import type { FeedEvent } from '../../../registry/event-feed';
import { WORKFLOWS_PATH } from '../../../worker/worker';
import { webhookWorkflowId } from '../../../workflows/ids';
import { webhookQueue, webhookWaitQueue } from '../../../workflows/task-queues';
import { webhookWorkflow } from '../../../workflows/webhook';
import { startTimeSkipping } from '../support/time-skipping';
import { until } from './test-bed';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

const event = (id: number): FeedEvent => ({
  id: String(id),
  type: 'sandbox.running',
  sandboxId: `sbx-${id}`,
  owner: 'alice',
  driver: 'fake',
  labels: {},
  seq: 1,
  from: 'BOOTING',
  to: 'RUNNING',
  reason: 'test',
  at: new Date(0).toISOString(),
});

/** The feed and the receiver, in memory: what the workflow's activities would see and do. */
class FakeFeed {
  events: FeedEvent[] = [];
  deleted = false;
  readonly waits: { after: string; runId: string }[] = [];
  readonly delivered: string[] = [];
  readonly settled: { id: string; status: string }[] = [];
  readonly failing = new Set<string>();

  activities() {
    return {
      waitForWebhookEvents: async (req: { webhookId: string; after: string }): Promise<WebhookBatch> => {
        this.waits.push({ after: req.after, runId: Context.current().info.workflowExecution!.runId });
        const events = this.events.filter((e) => BigInt(e.id) > BigInt(req.after)).slice(0, 3);
        if (!events.length) await new Promise((r) => setTimeout(r, 20)); // a quiet wait, in short
        const through = events.at(-1)?.id ?? req.after;
        return { deleted: !events.length && this.deleted, events, through, retryForSeconds: 5 };
      },
      deliverWebhook: async (req: { webhookId: string; event: FeedEvent }) => {
        if (this.failing.has(req.event.id)) {
          throw ApplicationFailure.nonRetryable(`delivery ${req.event.id} failed: HTTP 410`, 'WebhookNotDelivered');
        }
        this.delivered.push(req.event.id);
        return 'delivered' as const;
      },
      settleWebhookDelivery: async (req: { event: FeedEvent; status: string }) => {
        this.settled.push({ id: req.event.id, status: req.status });
      },
    };
  }
}

let env: TestWorkflowEnvironment;
let bundle: WorkflowBundle;
let feed: FakeFeed;
let taskQueue: string;
let running: Promise<unknown>;
let workers: Worker[];

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  [env, bundle] = await Promise.all([
    startTimeSkipping(),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet }),
  ]);
  feed = new FakeFeed();
  taskQueue = `unit-webhook-${randomBytes(4).toString('hex')}`;
  const common = { connection: env.nativeConnection, activities: feed.activities(), shutdownGraceTime: '1s' };
  workers = await Promise.all([
    Worker.create({ ...common, taskQueue, workflowBundle: bundle }),
    Worker.create({ ...common, taskQueue: webhookWaitQueue(taskQueue) }),
    Worker.create({ ...common, taskQueue: webhookQueue(taskQueue) }),
  ]);
  running = Promise.all(workers.map((w) => w.run()));
}, 60_000);
afterAll(async () => {
  for (const w of workers ?? []) w.shutdown();
  await running;
  await env?.teardown();
});

describe('webhookWorkflow', () => {
  it('continues as new every eventsPerRun events, carrying the cursor: each event once, in order', async () => {
    feed.events = Array.from({ length: 9 }, (_, i) => event(101 + i));
    feed.failing.add('104');
    const handle = await env.client.workflow.start(webhookWorkflow, {
      workflowId: webhookWorkflowId(`whk_unit${randomBytes(4).toString('hex')}`),
      taskQueue,
      args: [{ webhookId: 'whk_unit', cursor: '100', eventsPerRun: 3 }],
    });
    await until(() => feed.delivered.length === 8, 20_000);
    feed.deleted = true;
    expect(await handle.result()).toEqual({ deleted: true });

    // 104 failed for good: settled, and the cursor went on past it.
    expect(feed.delivered).toEqual(['101', '102', '103', '105', '106', '107', '108', '109']);
    expect(feed.settled).toEqual([{ id: '104', status: 'failed' }]);
    // Three runs of 3 events each (then a fourth that finds the webhook deleted): each run's first
    // wait starts where the previous run's cursor stood.
    const runs = [...new Set(feed.waits.map((w) => w.runId))];
    expect(runs.length).toBeGreaterThanOrEqual(4);
    const firstWaits = runs.map((r) => feed.waits.find((w) => w.runId === r)!.after);
    expect(firstWaits.slice(0, 4)).toEqual(['100', '103', '106', '109']);
    expect(runs[0]).toBe(handle.firstExecutionRunId);

    const first = env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    const history = await first.fetchHistory();
    const last = history.events!.at(-1)!;
    expect(last.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    if (process.env.RECORD_FIXTURES) {
      const bytes = proto.temporal.api.history.v1.History.encode(history).finish();
      writeFileSync(path.join(FIXTURES, 'webhook-1.bin'), bytes);
    }
  });

  it('replays its recorded history (fixtures/webhook-1.bin) without nondeterminism', async () => {
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(path.join(FIXTURES, 'webhook-1.bin')));
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, 'webhook-1');
  });
});
