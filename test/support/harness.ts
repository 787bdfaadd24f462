// Per-file test harness: a real worker (bundled once), the real API on a random port, a real
// process driver in a temporary state dir, all on a task queue of its own.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, bundleWorkflowCode, type Worker } from '@temporalio/worker';
import type pg from 'pg';
import { inject } from 'vitest';
import { createApp } from '../../api/app';
import { SandboxService } from '../../api/sandbox-service';
import { SessionService } from '../../api/session-service';
import { HypervisorSet } from '../../hypervisors/index';
import { ProcessHypervisor } from '../../hypervisors/process';
import type { Hypervisor } from '../../hypervisors/types';
import { createPool } from '../../registry/pool';
import { WORKFLOWS_PATH, createWorker } from '../../worker/worker';

export interface Harness {
  client: Client;
  pool: pg.Pool;
  taskQueue: string;
  stateDir: string;
  hypervisors: HypervisorSet;
  service: SandboxService;
  api: <T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: T }>;
  /** Starts the worker; `workflowsPath` swaps in another bundle (e.g. one that cannot run sandboxes). */
  startWorker(opts?: { workflowsPath?: string }): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

let bundle: Awaited<ReturnType<typeof bundleWorkflowCode>> | undefined;
let runtimeInstalled = false;

export async function startHarness(opts: { drivers?: Record<string, Hypervisor>; defaultDriver?: string } = {}): Promise<Harness> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  bundle ??= await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  const address = inject('temporalAddress');
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-test-'));
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const pool = createPool(inject('databaseUrl'));
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const drivers = new Map<string, Hypervisor>([
    ['process', new ProcessHypervisor({ stateDir, useBubblewrap: true, network: false })],
    ...Object.entries(opts.drivers ?? {}),
  ]);
  const hypervisors = new HypervisorSet(drivers, opts.defaultDriver ?? 'process');

  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let nativeConnection: NativeConnection | undefined;
  const startWorker = async (o: { workflowsPath?: string } = {}) => {
    nativeConnection = await NativeConnection.connect({ address });
    const workflowBundle = o.workflowsPath ? await bundleWorkflowCode({ workflowsPath: o.workflowsPath, logger: quietLogger }) : bundle;
    worker = await createWorker({ connection: nativeConnection, taskQueue, pool, hypervisors, client, workflowBundle });
    running = worker.run();
  };
  const stopWorker = async () => {
    worker?.shutdown();
    await running;
    await nativeConnection?.close();
    worker = undefined;
  };
  await startWorker();

  const service = new SandboxService(client, pool, {
    taskQueue,
    drivers: [...drivers.keys()],
    defaultDriver: hypervisors.defaultDriver,
    defaultMaxLifetimeSeconds: 3600,
    readyTimeoutSeconds: 60,
  });
  const sessions = new SessionService(client, taskQueue);
  const server = createApp({ sandboxes: service, sessions, reaperGraceSeconds: 1 }).listen(0);
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const api: Harness['api'] = async (method, p, body, headers = {}) => {
    const res = await fetch(base + p, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  return {
    client,
    pool,
    taskQueue,
    stateDir,
    hypervisors,
    service,
    api,
    startWorker,
    stopWorker,
    async close() {
      await new Promise((r) => server.close(r));
      await stopWorker();
      // Leave nothing running on this machine: whatever a test left is destroyed with its driver.
      for (const driver of hypervisors.all()) {
        for (const vm of await driver.list().catch(() => [])) await driver.destroy(vm.id).catch(() => {});
      }
      await connection.close();
      await pool.end();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export interface EventRow {
  seq: number;
  from: string | null;
  to: string;
  reason: string;
  at: string;
}

/**
 * A sandbox's events once they run without gaps up to one that moved to `last`. Its workflow
 * writes them in parallel, so the row (and a later event) may land before an earlier event.
 */
export function settledEvents(h: Pick<Harness, 'api'>, id: string, last: string): Promise<EventRow[]> {
  return eventually(async () => {
    const items = (await h.api<{ items: EventRow[] }>('GET', `/v1/sandboxes/${id}/events`)).body.items;
    const gapless = items.every((e, i) => e.seq === i + 1);
    return gapless && items.at(-1)?.to === last ? items : undefined;
  });
}

/** Polls until fn returns a truthy value (or throws the last error after timeoutMs). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error('condition not met');
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
