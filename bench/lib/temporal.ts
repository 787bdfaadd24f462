// Temporal from the bench's side: a client of the stack's server with the service's payload
// codec (its key is in the state dir), and the floor — bare workflows served by a worker inside
// the bench process on a task queue of their own.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { dataConverter } from '../../codec/data-converter';
import { loadCodecKeys } from '../../codec/keys';
import * as activities from './bare-activities';
import type { Stack } from './stack';

const require = createRequire(import.meta.url);

let runtimeInstalled = false;
/** The SDK must not take SIGINT/SIGTERM for itself: the bench stops its worker and the stack in order. */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ shutdownSignals: [], logger: new DefaultLogger('WARN') });
}

/** The same converter the service uses (HOURGLASS_CODEC_KEY when set, else the state dir's key). */
export function converterOf(stack: Stack) {
  return dataConverter(loadCodecKeys(process.env, stack.stateDir));
}

export async function connectClient(stack: Stack): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE || 'default',
    dataConverter: converterOf(stack),
  });
  return { client, close: () => connection.close() };
}

export interface Floor {
  /** Starts one bare workflow and waits for its result: ms from start to result. */
  run(activityCount: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startFloor(stack: Stack, client: Client): Promise<Floor> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: stack.temporalAddress });
  const taskQueue = `bench-floor-${randomBytes(4).toString('hex')}`;
  const worker = await Worker.create({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE || 'default',
    taskQueue,
    workflowsPath: require.resolve('./bare-workflow.ts'),
    activities,
    dataConverter: converterOf(stack),
  });
  const running = worker.run();
  let n = 0;
  return {
    async run(activityCount) {
      const started = performance.now();
      await client.workflow.execute('bareWorkflow', {
        taskQueue,
        workflowId: `${taskQueue}-${n++}`,
        args: [activityCount],
      });
      return performance.now() - started;
    },
    async stop() {
      worker.shutdown();
      await running.catch(() => {});
      await connection.close();
    },
  };
}
