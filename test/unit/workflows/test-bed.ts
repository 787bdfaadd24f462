// One time-skipping server, one workflow bundle and the workers of a queue (main, provision, execs,
// teardown) for a test file: the real workflows over the fake activities. Bundling takes seconds:
// once per file, so workflow tests live in few files.
import { randomBytes } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { WORKFLOWS_PATH } from '../../../worker/worker';
import { sandboxWorkflowId } from '../../../workflows/ids';
import { getStatus } from '../../../workflows/messages';
import { sandboxWorkflow } from '../../../workflows/sandbox';
import { ALL_SEARCH_ATTRIBUTES } from '../../../workflows/search-attributes';
import { execQueue, provisionQueue, teardownQueue } from '../../../workflows/task-queues';
import { startTimeSkipping } from '../support/time-skipping';
import type { SandboxState } from '../../../workflows/states';
import type { SandboxRequest } from '../../../workflows/types';
import { FakeWorld } from './fake-activities';

export interface WorkflowTestBed {
  env: TestWorkflowEnvironment;
  world: FakeWorld;
  taskQueue: string;
  /** The workflows as the workers run them (replays use it too). */
  workflowBundle: WorkflowBundle;
  /** Starts a sandbox workflow (a fresh id, a 60 s lease unless `request` says otherwise). */
  startSandbox(request?: Partial<SandboxRequest>): Promise<SandboxHandle>;
  /**
   * Ends a command still held at `gate` after its workflow closed. The time-skipping server leaks
   * the time-skipping lock of an activity its workflow left running: give it back.
   */
  endOrphanedCommand(gate: string): Promise<void>;
  close(): Promise<void>;
}

export type SandboxHandle = WorkflowHandle<typeof sandboxWorkflow> & { id: string };

const { IndexedValueType } = proto.temporal.api.enums.v1;
const INDEXED: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
};
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
let runtimeInstalled = false;

export async function startWorkflowTestBed(): Promise<WorkflowTestBed> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const [env, workflowBundle] = await Promise.all([
    startTimeSkipping(),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet }),
  ]);
  // The sandbox workflow upserts its state and expiry: the server must know those attributes.
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((a) => [a.name, INDEXED[a.type]!])),
  });
  const world = new FakeWorld();
  const taskQueue = `unit-${randomBytes(4).toString('hex')}`;
  const common = {
    connection: env.nativeConnection,
    activities: world.activities(),
    shutdownGraceTime: '1s',
    // Cancellations reach an activity with the answer to a heartbeat: send them at once.
    defaultHeartbeatThrottleInterval: '20ms',
    maxHeartbeatThrottleInterval: '20ms',
  };
  const workers = await Promise.all([
    Worker.create({ ...common, taskQueue, workflowBundle }),
    Worker.create({ ...common, taskQueue: provisionQueue(taskQueue) }),
    Worker.create({ ...common, taskQueue: teardownQueue(taskQueue) }),
    Worker.create({ ...common, taskQueue: execQueue(taskQueue) }),
  ]);
  const running = Promise.all(workers.map((w) => w.run()));
  let started = 0;
  return {
    env,
    world,
    taskQueue,
    workflowBundle,
    async startSandbox(over = {}) {
      const request: SandboxRequest = {
        id: `sbx-${taskQueue}-${++started}`,
        owner: 'local',
        driver: 'fake',
        ttlSeconds: 60,
        maxLifetimeSeconds: 3600,
        labels: {},
        readyTimeoutSeconds: 30,
        ...over,
      };
      const handle = await env.client.workflow.start(sandboxWorkflow, {
        workflowId: sandboxWorkflowId(request.id),
        taskQueue,
        args: [{ request }],
      });
      return Object.assign(handle, { id: request.id });
    },
    async endOrphanedCommand(gate) {
      world.release(gate);
      await until(() => !world.isWaiting(gate));
      await env.connection.testService!.unlockTimeSkipping({});
    },
    async close() {
      for (const w of workers) w.shutdown();
      await running;
      await env.teardown();
    },
  };
}

/** Waits (in real time: a query does not skip time) until the sandbox is in `state`. */
export async function untilState(handle: WorkflowHandle<typeof sandboxWorkflow>, state: SandboxState): Promise<void> {
  await until(async () => (await handle.query(getStatus)).state === state);
}

/** Polls until `check` returns something truthy, in real time (activities run in real time). */
export async function until<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
