// The chaos run: its own Temporal dev server (on a DB file, restarted once), a fresh PostgreSQL
// database, the worker and the API as separate child processes (SIGKILLed and restarted at
// random moments, the worker with HOURGLASS_FAULT_RATE), a planted foreign "VM", and many short
// sandboxes with renewals, destroys and sessions. Then: what leaked, how late, how often.
// The plan is in plan.ts, the clients in workload.ts, the chaos in monkey.ts, the figures in
// measure.ts and the verdict in report.ts.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import { diceFrom, mulberry32 } from '../lib/prng';
import { ChaosClient, sleep } from './client';
import { plantForeignVm } from './foreign-vm';
import { measure } from './measure';
import { runMonkey } from './monkey';
import { StateDirMonitor, killStrays } from './monitor';
import { DEFAULTS, countByKind, makePlan, type ChaosOptions } from './plan';
import type { ChaosReport } from './report';
import { ChildService, TemporalServer, freePort, freshDatabase, killGroup } from './services';
import { Workload } from './workload';

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o: ChaosOptions = { ...DEFAULTS, ...partial };
  const log = o.log;
  // One random source for the whole run; the plan draws first, so a seed replays the same plan.
  const dice = diceFrom(mulberry32(o.seed));
  const plan = makePlan(o, dice);
  const t0 = Date.now();
  const runId = randomBytes(3).toString('hex');
  const root = mkdtempSync(path.join(os.tmpdir(), `hourglass-chaos-${runId}-`));
  const stateDir = path.join(root, 'state');
  const processRoot = path.join(stateDir, 'process');
  mkdirSync(processRoot, { recursive: true });
  const cleanups: (() => Promise<unknown>)[] = [];
  const failures: string[] = [];
  const safetyNet: string[] = [];
  log(`seed ${o.seed}, run ${runId}, state dir ${stateDir}`);

  // --- infrastructure --------------------------------------------------------------------------
  const db = await freshDatabase(log);
  log(`database ${db.url} (${db.kind})`);
  if (!o.keep) cleanups.push(() => db.drop());
  const temporal = new TemporalServer(path.join(root, 'temporal'), await freePort());
  await temporal.start();
  log(`Temporal dev server on ${temporal.address}, history in ${temporal.dbFilename}`);
  cleanups.push(() => temporal.stop());
  const apiPort = await freePort();
  const taskQueue = `chaos-${runId}`;
  const baseEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // The start-up block they are awaited by is an info line: an inherited LOG_LEVEL (tests: warn) would hide it.
    LOG_LEVEL: 'info',
    TEMPORAL_ADDRESS: temporal.address,
    DATABASE_URL: db.url,
    HOURGLASS_TASK_QUEUE: taskQueue,
    HOURGLASS_STATE_DIR: stateDir,
    HOURGLASS_DRIVERS: 'process',
    HOURGLASS_REAPER_INTERVAL_SECONDS: String(o.reaperIntervalSeconds),
    HOURGLASS_REAPER_GRACE_SECONDS: String(o.reaperGraceSeconds),
    HOURGLASS_READY_TIMEOUT_SECONDS: '60',
    PORT: String(apiPort),
  };
  delete baseEnv.HOURGLASS_FAULT_RATE;
  delete baseEnv.NODE_OPTIONS; // vitest's loader hooks must not leak into the children
  const workerEnv = { ...baseEnv, HOURGLASS_FAULT_RATE: String(o.faultRate) };
  const workerLog = path.join(root, 'worker.log');
  const worker = new ChildService('worker', 'worker', workerEnv, workerLog, /Hourglass is up/, log);
  const api = new ChildService('api', 'api', baseEnv, path.join(root, 'api.log'), /Hourglass is up/, log);
  const killAll = () => {
    worker.killNow();
    api.killNow();
  };
  process.once('exit', killAll);
  const onSignal = (sig: NodeJS.Signals) => {
    killAll();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  cleanups.push(async () => {
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
  cleanups.push(async () => {
    await Promise.all([worker.stop(), api.stop()]);
    await Promise.all([worker.closeLog(), api.closeLog()]);
  });

  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  cleanups.push(() => connection.close());
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  cleanups.push(() => pool.end());

  try {
    // --- the foreign "VM": not Hourglass's, must never be touched ------------------------------
    const foreign = plantForeignVm(processRoot);
    cleanups.push(async () => foreign.process && killGroup(foreign.process.pid, 'SIGKILL'));
    const foreignNames = foreign.dirs.map((d) => path.basename(d));
    log(`planted foreign VMs ${foreignNames.join(', ')} (holder pid ${foreign.process.pid})`);

    const monitor = new StateDirMonitor(processRoot, new Set(foreignNames));
    monitor.start();

    const started = Date.now();
    worker.start();
    api.start();
    await Promise.all([worker.waitReady(), api.waitReady()]);
    const upSeconds = ((Date.now() - started) / 1000).toFixed(1);
    log(`worker and API up in ${upSeconds} s (API on :${apiPort}, task queue ${taskQueue})`);

    // --- the plan, carried out while the monkey breaks things -------------------------------------
    const http = new ChaosClient(() => `http://127.0.0.1:${apiPort}`, { budgetMs: 90_000, random: dice.next });
    const byKind = JSON.stringify(countByKind(plan));
    log(`plan: ${plan.sandboxes.length} sandboxes ${byKind}, ${plan.sessions.length} sessions`);
    const workload = new Workload(http, dice, runId, started, failures);
    const monkey = runMonkey(o, dice, started, { temporal, worker, api });
    await workload.run(plan);
    log(`all clients done at +${((Date.now() - started) / 1000).toFixed(0)} s; waiting for the chaos monkey`);
    const temporalOutages = await monkey;
    await Promise.all([worker.waitReady(), api.waitReady()]);

    // --- convergence: every lease + grace over, the reaper has run ------------------------------
    const driver = new ProcessHypervisor({ stateDir });
    const converged = await waitConverged(o, pool, driver);
    if (converged === null) log('did NOT converge before the deadline');
    else log(`converged ${converged.toFixed(1)} s after the last lease end`);
    // One reaper run on demand, after everything should be over: it must find nothing to do.
    await sleep((o.reaperGraceSeconds + 1) * 1000);
    const prune = await http
      .call('POST', '/v1/sandboxes/prune', {}, { timeoutMs: 120_000 })
      .catch((e: Error) => ({ status: 0, body: e.message }));
    log(`final prune: ${JSON.stringify(prune.body).slice(0, 300)}`);
    await sleep(1000);
    await monitor.stop();

    // --- measure --------------------------------------------------------------------------------
    return await measure({
      o,
      t0,
      stateDir,
      db: db.url,
      taskQueue,
      driver,
      pool,
      client,
      monitor,
      foreign,
      worker,
      api,
      http,
      temporalOutages,
      plan,
      workload,
      converged,
      prune: prune.body,
      failures,
      safetyNet,
    });
  } finally {
    // --- safety net (after measuring): nothing of this run may keep running ---------------------
    await worker.stop().catch(() => {});
    await api.stop().catch(() => {});
    safetyNet.push(...(await killStrays(stateDir)));
    for (const fn of cleanups.reverse()) await fn().catch((err: Error) => log(`cleanup: ${err.message}`));
    if (!o.keep) rmSync(root, { recursive: true, force: true });
    else log(`kept ${root}`);
  }
}

/** Seconds from the last lease end until every row is DESTROYED and the driver lists nothing; null = never. */
async function waitConverged(o: ChaosOptions, pool: pg.Pool, driver: ProcessHypervisor): Promise<number | null> {
  const lastLease = async () =>
    Number((await pool.query(`SELECT extract(epoch from max(expires_at)) * 1000 AS t FROM sandboxes`)).rows[0]?.t ?? 0);
  const notDestroyed = async () =>
    (await pool.query<{ id: string }>(`SELECT id FROM sandboxes WHERE state <> 'DESTROYED'`)).rows.map((r) => r.id);
  const patienceMs = (o.reaperGraceSeconds + 2 * o.reaperIntervalSeconds + 90) * 1000;
  const deadline = Math.max(Date.now(), await lastLease()) + patienceMs;
  while (Date.now() < deadline) {
    const [rows, vms] = await Promise.all([notDestroyed(), driver.list()]);
    const last = await lastLease();
    if (rows.length === 0 && vms.length === 0 && Date.now() > last + o.reaperGraceSeconds * 1000) {
      return (Date.now() - last) / 1000;
    }
    await sleep(1000);
  }
  return null;
}
