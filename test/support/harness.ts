// Per-file test harness: a real worker (bundled once), the real API on a random port, a real
// process driver in a temporary state dir, all on a task queue of its own.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, bundleWorkflowCode } from '@temporalio/worker';
import type { Express } from 'express';
import type pg from 'pg';
import { inject } from 'vitest';
import { createApp } from '../../api/app';
import { limitsPolicyFromEnv } from '../../api/limits';
import { SandboxService } from '../../api/sandboxes/service';
import { SessionService } from '../../api/sessions/service';
import { WebhookService } from '../../api/webhooks/service';
import { TokenStore, type Role } from '../../api/tokens';
import { dataConverter } from '../../codec/data-converter';
import { codecKeysOf } from '../../codec/keys';
import { HypervisorSet } from '../../hypervisors/index';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import type { Hypervisor } from '../../hypervisors/types';
import { createPool } from '../../registry/pool';
import { SdkLogger } from '../../worker/sdk-logger';
import { WORKFLOWS_PATH, createWorkers, type WorkerGroup } from '../../worker/worker';

export interface Harness {
  client: Client;
  pool: pg.Pool;
  taskQueue: string;
  stateDir: string;
  hypervisors: HypervisorSet;
  service: SandboxService;
  /** Calls the API (with the default token, if the harness has tokens). */
  // Bodies are untyped JSON unless the caller names T; about 200 reads in the tests rely on that.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- unknown would need a cast at each of those reads
  api: <T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ) => Promise<{ status: number; body: T }>;
  /** Calls the API with a given bearer token (or none). */
  apiAs: (token: string | undefined) => Harness['api'];
  baseUrl: string;
  /** The express app being served (test/openapi.test.ts lists its routes). */
  app: Express;
  /** Starts the worker; `workflowsPath` swaps in another bundle (e.g. one that cannot run sandboxes). */
  startWorker(opts?: { workflowsPath?: string }): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

let bundle: Awaited<ReturnType<typeof bundleWorkflowCode>> | undefined;
let runtimeInstalled = false;

/** The key every test encrypts Temporal payloads with (the same in every file: one server). */
export const TEST_CODEC_KEY = Buffer.alloc(32, 7).toString('base64');
export const testDataConverter = () => dataConverter(codecKeysOf([TEST_CODEC_KEY], 'test'));

export interface HarnessOptions {
  drivers?: Record<string, Hypervisor>;
  defaultDriver?: string;
  /** Turn auth on with these tokens; `api` then uses the first one. */
  tokens?: { owner: string; role: Role; token: string }[];
  /** Operator limits (HOURGLASS_MAX_*, HOURGLASS_TEMPLATE_LIMITS) as environment variables. */
  limitsEnv?: NodeJS.ProcessEnv;
  /** Live sandboxes a user token may have (default 1000). */
  maxSandboxesPerOwner?: number;
  /** Creates under way at once before 429 (default: no limit). */
  maxPendingCreates?: number;
  /** false: no in-process worker (a test runs its own, e.g. as a separate process). */
  worker?: boolean;
  /** Webhooks: allow loopback receivers (HOURGLASS_WEBHOOK_ALLOW_PRIVATE; default off) and the retry window. */
  webhooks?: { allowPrivate?: boolean; retryForSeconds?: number };
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  if (!runtimeInstalled) {
    // The service's SDK logger, at LOG_LEVEL (warn in tests: vitest.config.ts).
    Runtime.install({ logger: new SdkLogger() });
    runtimeInstalled = true;
  }
  bundle ??= await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  const address = inject('temporalAddress');
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-test-'));
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const pool = createPool(inject('databaseUrl'));
  const connection = await Connection.connect({ address });
  const converter = testDataConverter();
  const testCodecKeys = codecKeysOf([TEST_CODEC_KEY], 'test');
  const client = new Client({ connection, dataConverter: converter });
  const drivers = new Map<string, Hypervisor>([
    ['process', new ProcessHypervisor({ stateDir })],
    ...Object.entries(opts.drivers ?? {}),
  ]);
  const hypervisors = new HypervisorSet(drivers, opts.defaultDriver ?? 'process');

  let worker: WorkerGroup | undefined;
  let running: Promise<void> | undefined;
  let nativeConnection: NativeConnection | undefined;
  const startWorker = async (o: { workflowsPath?: string } = {}) => {
    nativeConnection = await NativeConnection.connect({ address });
    const workflowBundle = o.workflowsPath
      ? await bundleWorkflowCode({ workflowsPath: o.workflowsPath, logger: quietLogger })
      : bundle;
    worker = await createWorkers({
      connection: nativeConnection,
      taskQueue,
      pool,
      hypervisors,
      client,
      workflowBundle,
      dataConverter: converter,
      webhooks: {
        codecKeys: testCodecKeys,
        allowPrivate: opts.webhooks?.allowPrivate ?? false,
        retryForSeconds: opts.webhooks?.retryForSeconds ?? 24 * 3600,
      },
    });
    running = worker.run();
  };
  const stopWorker = async () => {
    worker?.shutdown();
    await running;
    await nativeConnection?.close();
    worker = undefined;
  };
  if (opts.worker !== false) await startWorker();

  const sessions = new SessionService(client, taskQueue);
  const service = new SandboxService(
    client,
    pool,
    {
      taskQueue,
      drivers: [...drivers.keys()],
      defaultDriver: hypervisors.defaultDriver,
      defaultMaxLifetimeSeconds: 3600,
      readyTimeoutSeconds: 60,
      limits: limitsPolicyFromEnv(opts.limitsEnv ?? {}),
      maxSandboxesPerOwner: opts.maxSandboxesPerOwner ?? 1000,
      maxPendingCreates: opts.maxPendingCreates,
    },
    sessions,
  );
  const tokens = TokenStore.of(opts.tokens ?? []);
  const webhooks = new WebhookService(client, pool, {
    taskQueue,
    codecKeys: testCodecKeys,
    allowPrivate: opts.webhooks?.allowPrivate ?? false,
  });
  const app = createApp({
    sandboxes: service,
    sessions,
    webhooks,
    reaperGraceSeconds: 1,
    tokens,
    codec: { codec: converter.payloadCodecs![0]!, uiOrigins: ['http://localhost:8233'] },
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const apiAs =
    (token: string | undefined): Harness['api'] =>
    async (method, p, body, headers = {}) => {
      const res = await fetch(base + p, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
  const api = apiAs(opts.tokens?.[0]?.token);

  return {
    client,
    pool,
    taskQueue,
    stateDir,
    hypervisors,
    service,
    api,
    apiAs,
    baseUrl: base,
    app,
    startWorker,
    stopWorker,
    async close() {
      await new Promise((r) => server.close(r));
      await stopWorker();
      // Leave nothing running on this machine: whatever a test left is destroyed with its driver.
      for (const driver of hypervisors.all()) {
        for (const vm of await driver.list().catch(() => [])) await driver.destroy(vm.id).catch(() => {});
      }
      await hypervisors.close();
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
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 100,
): Promise<T> {
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
