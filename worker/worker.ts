// Worker bootstrap: the sandbox workflows plus activities built from real dependencies.
import { createRequire } from 'node:module';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type pg from 'pg';
import { createActivities } from '../activities';
import type { HypervisorSet } from '../hypervisors/index';

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
}

export async function createWorker(deps: WorkerDeps): Promise<Worker> {
  return Worker.create({
    connection: deps.connection,
    namespace: deps.namespace ?? 'default',
    taskQueue: deps.taskQueue,
    ...(deps.identity ? { identity: deps.identity } : {}),
    dataConverter: deps.dataConverter,
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ pool: deps.pool, hypervisors: deps.hypervisors, client: deps.client, taskQueue: deps.taskQueue }),
    // Let in-flight activities (a destroy, an exec) finish on Ctrl-C.
    shutdownGraceTime: '30s',
    // A crashed worker's cached workflows get their next task (a lease timer!) on its sticky
    // queue; fall back to the shared queue after 3 s instead of 10 s so expiry stays on time.
    stickyQueueScheduleToStartTimeout: '3s',
  });
}
