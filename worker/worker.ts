// Worker bootstrap: the sandbox workflows plus activities built from real dependencies. One worker
// per task queue, sharing a connection: workflows and quick activities on the main queue, creates
// and destroys on queues of their own with their own slots (workflows/task-queues.ts).
import { createRequire } from 'node:module';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import type pg from 'pg';
import { createActivities } from '../activities';
import { ExecKills } from '../activities/exec-kills';
import type { WebhookSettings } from '../activities/webhooks';
import type { HypervisorSet } from '../hypervisors/index';
import { instrumentHypervisors } from '../metrics/instrumented-hypervisors';
import { execQueue, provisionQueue, teardownQueue, webhookQueue, webhookWaitQueue } from '../workflows/task-queues';
import { workerTuning, type WorkerTuning } from '../config/service';
import { bundlerLogger } from './sdk-logger';

const require = createRequire(import.meta.url);
export const WORKFLOWS_PATH = require.resolve('../workflows/index.ts');

export interface WorkerDeps {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  pool: pg.Pool;
  hypervisors: HypervisorSet;
  client: Client;
  /** The same encrypting converter as the clients' (codec/data-converter.ts). */
  dataConverter: DataConverter;
  /** A pre-built bundle (tests bundle once per file); otherwise workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  tuning?: WorkerTuning;
  /** Webhook deliveries (codec keys, address guard, retry window); without it they wait for a worker that has it. */
  webhooks?: WebhookSettings;
}

/** The workers of one process, run and stopped together. */
export interface WorkerGroup {
  run(): Promise<void>;
  /** Stops polling; in-flight activities get the grace time. Safe to call twice. */
  shutdown(): void;
}

export async function createWorkers(deps: WorkerDeps): Promise<WorkerGroup> {
  const tuning = deps.tuning ?? workerTuning({}); // the documented defaults
  const execKills = new ExecKills(deps.pool);
  const activities = createActivities({
    execKills,
    pool: deps.pool,
    // Every driver call the activities make is counted and timed (metrics/instrumented-hypervisors.ts).
    hypervisors: instrumentHypervisors(deps.hypervisors),
    client: deps.client,
    taskQueue: deps.taskQueue,
    webhooks: deps.webhooks,
  });
  const common = {
    connection: deps.connection,
    namespace: deps.namespace ?? 'default',
    ...(deps.identity ? { identity: deps.identity } : {}),
    dataConverter: deps.dataConverter,
    activities,
    // Let in-flight activities (a destroy, an exec) finish on Ctrl-C.
    shutdownGraceTime: '30s',
  } satisfies Partial<WorkerOptions>;
  const main = await Worker.create({
    ...common,
    taskQueue: deps.taskQueue,
    // Bundled here rather than by Worker.create, so webpack's statistics go to the debug log.
    workflowBundle:
      deps.workflowBundle ?? (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: bundlerLogger() })),
    maxCachedWorkflows: tuning.maxCachedWorkflows,
    // A crashed worker's cached workflows get their next task (a lease timer!) on its sticky
    // queue; fall back to the shared queue after 3 s instead of 10 s so expiry stays on time.
    stickyQueueScheduleToStartTimeout: '3s',
  });
  const provision = await Worker.create({
    ...common,
    taskQueue: provisionQueue(deps.taskQueue),
    maxConcurrentActivityTaskExecutions: tuning.provisionConcurrency,
  });
  const teardown = await Worker.create({
    ...common,
    taskQueue: teardownQueue(deps.taskQueue),
    maxConcurrentActivityTaskExecutions: tuning.teardownConcurrency,
  });
  // Webhook deliveries (tenants' receivers, up to 10 s each) on their own slots.
  const webhooks = await Worker.create({
    ...common,
    // Cut short on shutdown: a delivery cut mid-POST is sent again with the same Hourglass-Delivery-Id.
    shutdownGraceTime: '2s',
    taskQueue: webhookQueue(deps.taskQueue),
    maxConcurrentActivityTaskExecutions: tuning.webhookConcurrency,
  });
  // Webhook waits (one idle long poll per subscription) on slots of their own: never a delivery's.
  const webhookWaits = await Worker.create({
    ...common,
    // A wait would hold shutdown for the whole grace time: cut it short, another worker retries it.
    shutdownGraceTime: '2s',
    taskQueue: webhookWaitQueue(deps.taskQueue),
    maxConcurrentActivityTaskExecutions: tuning.webhookWaitConcurrency,
  });
  // Streamed and background commands: a slot each for as long as they run.
  const execs = await Worker.create({
    ...common,
    taskQueue: execQueue(deps.taskQueue),
    maxConcurrentActivityTaskExecutions: tuning.execConcurrency,
  });
  const workers = [main, provision, teardown, webhooks, webhookWaits, execs];
  const shutdown = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  return {
    run: async () => {
      // One failing worker stops the others: a process serving only part of the queues would look alive.
      const runs = workers.map((w) => w.run());
      try {
        await Promise.all(runs);
      } finally {
        shutdown();
        await Promise.allSettled(runs);
        await execKills.close(); // after the last command: its listener goes with the workers
      }
    },
    shutdown,
  };
}
