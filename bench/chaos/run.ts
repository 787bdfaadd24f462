// The chaos run: its own Temporal dev server (on a DB file, restarted once), a fresh PostgreSQL
// database, the worker and the API as separate child processes (SIGKILLed and restarted at
// random moments, the worker with HOURGLASS_FAULT_RATE), a planted foreign "VM", and many short
// sandboxes with renewals, destroys and sessions. Then: what leaked, how late, how often.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { isAlive, type RecordedProcess } from '../../hypervisors/shared/proc-identity';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import { ChaosClient, sleep } from './client';
import { StateDirMonitor, processesMentioning } from './monitor';
import { ChildService, TemporalServer, freePort, freshDatabase, killGroup, type Outage } from './services';

export interface ChaosOptions {
  sandboxes: number;
  /** creations are spread over this many seconds */
  creationWindowSeconds: number;
  ttlSeconds: [number, number];
  /** seconds between two chaos events (uniform) */
  chaosEverySeconds: [number, number];
  /** how long a killed service stays down before it is started again (uniform) */
  pauseSeconds: [number, number];
  temporalRestarts: number;
  faultRate: number;
  reaperIntervalSeconds: number;
  reaperGraceSeconds: number;
  /** the promise: gone within expiresAt + this, outside outages */
  overshootBoundSeconds: number;
  /** after a worker/Temporal outage ends, leases ending this much later still count as disturbed */
  recoveryMarginSeconds: number;
  seed: number;
  keep: boolean;
  log: (m: string) => void;
}

export const DEFAULTS: ChaosOptions = {
  sandboxes: 220,
  creationWindowSeconds: 150,
  ttlSeconds: [3, 10],
  chaosEverySeconds: [16, 26],
  pauseSeconds: [0.5, 2],
  temporalRestarts: 1,
  faultRate: 0.2,
  reaperIntervalSeconds: 5,
  reaperGraceSeconds: 2,
  overshootBoundSeconds: 5,
  recoveryMarginSeconds: 10,
  seed: Date.now() % 1_000_000,
  keep: false,
  log: (m) => console.log(`[chaos ${new Date().toISOString().slice(11, 23)}] ${m}`),
};

type Kind = 'expire' | 'renew-update' | 'renew-signal' | 'destroy' | 'session';

export interface Distribution {
  n: number;
  p50?: number;
  p95?: number;
  max?: number;
  min?: number;
}

export interface ChaosReport {
  seed: number;
  durationSeconds: number;
  stateDir: string;
  database: string;
  sandboxes: { planned: number; byKind: Record<string, number>; sessions: { deleted: number; lapsed: number }; createCalls: { ok: number; refused: Record<string, number>; failed: number } };
  chaos: {
    workerKills: number;
    apiKills: number;
    temporalRestarts: number;
    crashes: { service: string; at: string; code: number | null; signal: string | null }[];
    outages: { service: string; cause: string; startSecond: number; seconds: number | null }[];
    injectedFaults: Record<string, number>;
    api: { calls: number; retries: number; retriedCalls: number; failedCalls: number; conflicts: number; retryCauses: Record<string, number>; failures: string[] };
  };
  leaks: {
    liveVms: number;
    leftoverDirs: string[];
    liveHolders: number;
    strayProcesses: string[];
    rowsNotDestroyed: string[];
    openSandboxWorkflows: number;
    openSessionWorkflows: number;
    foreignTouched: string[];
  };
  exactlyOnce: {
    destroyedEventsPerSandbox: Record<string, number>;
    sandboxesWithoutDestroyedEvent: string[];
    sandboxesWithSeveralDestroyedEvents: string[];
    dirsRecreated: string[];
    holdersPerSandbox: Record<string, number>;
    vmAlreadyGoneReasons: number;
  };
  timing: {
    definition: string;
    observedAll: Distribution;
    observedCalm: Distribution;
    observedDisturbed: Distribution;
    /** calm sandboxes by how many injected destroy faults they suffered (from the worker log) */
    calmByDestroyFaults: Record<string, Distribution>;
    registryAll: Distribution;
    endedEarly: number;
    neverRunning: number;
    calmOverBound: { id: string; overshoot: number; reason: string; destroyFaults: number }[];
    worst: { id: string; overshoot: number; reason: string; disturbed: boolean; destroyFaults: number }[];
    convergedSecondsAfterLastLease: number | null;
    monitorMaxPollGapMs: number;
  };
  destroyReasons: Record<string, number>;
  reaper: { runs: number; counts: Record<string, number>; finalPrune: unknown };
  safetyNet: string[];
  failures: string[];
}

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o: ChaosOptions = { ...DEFAULTS, ...partial };
  const log = o.log;
  const rnd = mulberry32(o.seed);
  const uniform = ([a, b]: [number, number]) => a + (b - a) * rnd();
  const int = ([a, b]: [number, number]) => Math.floor(a + (b - a + 1) * rnd());
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
  const worker = new ChildService('worker', 'worker', { ...baseEnv, HOURGLASS_FAULT_RATE: String(o.faultRate) }, path.join(root, 'worker.log'), /worker polling task queue/, log);
  const api = new ChildService('api', 'api', baseEnv, path.join(root, 'api.log'), /API listening on/, log);
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
  cleanups.push(() => Promise.all([worker.stop(), api.stop()]).then(() => Promise.all([worker.closeLog(), api.closeLog()])));

  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  cleanups.push(() => connection.close());
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  cleanups.push(() => pool.end());

  try {
    // --- the foreign "VM": not Hourglass's, must never be touched ------------------------------
    const foreign = plantForeignVm(processRoot);
    cleanups.push(async () => foreign.process && killGroup(foreign.process.pid, 'SIGKILL'));
    log(`planted foreign VMs ${foreign.dirs.map((d) => path.basename(d)).join(', ')} (holder pid ${foreign.process.pid})`);

    const monitor = new StateDirMonitor(processRoot, new Set(foreign.dirs.map((d) => path.basename(d))));
    monitor.start();

    const started = Date.now();
    worker.start();
    api.start();
    await Promise.all([worker.waitReady(), api.waitReady()]);
    log(`worker and API up in ${((Date.now() - started) / 1000).toFixed(1)} s (API on :${apiPort}, task queue ${taskQueue})`);

    const http = new ChaosClient(() => `http://127.0.0.1:${apiPort}`, { budgetMs: 90_000, random: rnd });

    // --- the plan -----------------------------------------------------------------------------
    const plan = makePlan(o, rnd, int, uniform);
    const byKind: Record<string, number> = {};
    for (const p of plan.sandboxes) byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
    log(`plan: ${plan.sandboxes.length} sandboxes ${JSON.stringify(byKind)}, ${plan.sessions.length} sessions`);
    const createOutcome = { ok: 0, refused: {} as Record<string, number>, failed: 0 };
    const knownIds = new Set<string>();

    const createSandbox = async (key: string, body: Record<string, unknown>): Promise<string | null> => {
      const id = idFromKey('local', key);
      knownIds.add(id);
      try {
        const r = await http.call<{ id: string; state: string }>('POST', '/v1/sandboxes', body, {
          headers: { 'Idempotency-Key': key },
          timeoutMs: body.wait ? 90_000 : 20_000,
        });
        if (r.status === 200 || r.status === 201) {
          createOutcome.ok += 1;
          if (r.body.id !== id) failures.push(`idempotency id mismatch: ${r.body.id} != ${id}`);
          return id;
        }
        const code = `${r.status} ${(r.body as any)?.error?.code ?? ''}`.trim();
        createOutcome.refused[code] = (createOutcome.refused[code] ?? 0) + 1;
        return null;
      } catch {
        createOutcome.failed += 1;
        return null;
      }
    };
    const waitRunning = async (id: string, timeoutMs = 60_000): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const r = await http.call<{ state: string }>('GET', `/v1/sandboxes/${id}`).catch(() => null);
        if (r?.status === 200) {
          if (r.body.state === 'RUNNING') return true;
          if (['EXPIRED', 'DESTROYING', 'DESTROYED', 'FAILED'].includes(r.body.state)) return false;
        }
        await sleep(300);
      }
      return false;
    };

    const runSandbox = async (p: PlannedSandbox, sessionId?: string) => {
      await sleep(Math.max(0, started + p.atMs - Date.now()));
      const key = `chaos-${runId}-${p.n}`;
      const body = { ttlSeconds: p.ttl, wait: p.wait, labels: { chaos: runId, kind: p.kind }, ...(sessionId ? { sessionId } : {}) };
      const id = await createSandbox(key, body);
      if (!id) return;
      if (p.kind === 'renew-update' || p.kind === 'renew-signal') {
        if (!p.wait && !(await waitRunning(id))) return;
        for (let i = 0; i < p.renewals; i++) {
          await sleep(uniform([1, Math.max(1.5, p.ttl - 1.5)]) * 1000);
          const ttl = int([3, 8]);
          await http
            .call('POST', `/v1/sandboxes/${id}/lease/renew`, { ttlSeconds: ttl, async: p.kind === 'renew-signal' }, { headers: { 'Idempotency-Key': `${key}-renew-${i}` } })
            .catch(() => {});
        }
      } else if (p.kind === 'destroy') {
        await sleep(uniform([0.5, 4]) * 1000);
        await http.call('DELETE', `/v1/sandboxes/${id}`, { reason: 'chaos: destroy by request' }).catch(() => {});
      }
    };

    const runSession = async (s: PlannedSession) => {
      await sleep(Math.max(0, started + s.atMs - Date.now()));
      const r = await http.call<{ id: string }>('POST', '/v1/sessions', { heartbeatTimeoutSeconds: s.heartbeatTimeout }).catch(() => null);
      if (r?.status !== 201) {
        failures.push(`session create failed: ${r?.status ?? 'no answer'}`);
        return;
      }
      const sessionId = r.body.id;
      const members = s.members.map((m) => runSandbox({ ...m, atMs: 0 }, sessionId));
      if (s.end === 'delete') {
        await sleep(uniform([1.5, 4]) * 1000);
        await http.call('DELETE', `/v1/sessions/${sessionId}`).catch(() => {});
      } else {
        for (let i = 0; i < s.heartbeats; i++) {
          await sleep(2000);
          await http.call('POST', `/v1/sessions/${sessionId}/heartbeat`).catch(() => {});
        }
      }
      await Promise.all(members);
    };

    // --- the chaos monkey ----------------------------------------------------------------------
    const temporalOutages: Outage[] = [];
    let monkeyDone = false;
    const monkey = (async () => {
      const chaosEnd = started + (o.creationWindowSeconds + 5) * 1000;
      const restartAt = Array.from({ length: o.temporalRestarts }, (_, i) => started + ((i + 1) / (o.temporalRestarts + 1)) * o.creationWindowSeconds * 1000);
      const nap = (ms: number) => sleep(Math.max(0, Math.min(ms, chaosEnd - Date.now())));
      await nap(uniform(o.chaosEverySeconds) * 1000 * 0.6);
      while (Date.now() < chaosEnd) {
        const pause = uniform(o.pauseSeconds) * 1000;
        if (restartAt.length && Date.now() >= restartAt[0]!) {
          restartAt.shift();
          log(`chaos: restarting Temporal (down for ≥ ${(pause / 1000).toFixed(1)} s)`);
          const outage: Outage = { service: 'temporal', start: Date.now(), cause: 'restart' };
          temporalOutages.push(outage);
          await temporal.stop();
          await sleep(pause);
          await temporal.start();
          outage.end = Date.now();
          log(`chaos: Temporal back after ${((outage.end - outage.start) / 1000).toFixed(1)} s`);
        } else {
          const roll = rnd();
          const victims = roll < 0.5 ? [worker] : roll < 0.8 ? [api] : [worker, api];
          log(`chaos: SIGKILL ${victims.map((v) => `${v.name} (pgid ${v.pid})`).join(' + ')}, down ${(pause / 1000).toFixed(1)} s`);
          await Promise.all(victims.map((v) => v.kill()));
          await sleep(pause);
          const t = Date.now();
          victims.forEach((v) => v.start());
          await Promise.all(victims.map((v) => v.waitReady()));
          log(`chaos: ${victims.map((v) => v.name).join(' + ')} ready again ${((Date.now() - t) / 1000).toFixed(1)} s after restart`);
        }
        await nap(uniform(o.chaosEverySeconds) * 1000);
      }
      monkeyDone = true;
    })();

    await Promise.all([...plan.sandboxes.filter((p) => p.session === undefined).map((p) => runSandbox(p)), ...plan.sessions.map(runSession)]);
    log(`all clients done at +${((Date.now() - started) / 1000).toFixed(0)} s; waiting for the chaos monkey`);
    await monkey;
    void monkeyDone;
    await Promise.all([worker.waitReady(), api.waitReady()]);

    // --- convergence: every lease + grace over, the reaper has run ------------------------------
    const driver = new ProcessHypervisor({ stateDir });
    const lastLease = async () =>
      Number((await pool.query(`SELECT extract(epoch from max(expires_at)) * 1000 AS t FROM sandboxes`)).rows[0]?.t ?? 0);
    const notDestroyed = async () =>
      (await pool.query<{ id: string }>(`SELECT id FROM sandboxes WHERE state <> 'DESTROYED'`)).rows.map((r) => r.id);
    let converged: number | null = null;
    const deadline = Math.max(Date.now(), await lastLease()) + (o.reaperGraceSeconds + 2 * o.reaperIntervalSeconds + 90) * 1000;
    while (Date.now() < deadline) {
      const [rows, vms] = await Promise.all([notDestroyed(), driver.list()]);
      const last = await lastLease();
      if (rows.length === 0 && vms.length === 0 && Date.now() > last + o.reaperGraceSeconds * 1000) {
        converged = (Date.now() - last) / 1000;
        break;
      }
      await sleep(1000);
    }
    log(converged === null ? 'did NOT converge before the deadline' : `converged ${converged.toFixed(1)} s after the last lease end`);
    // One reaper run on demand, after everything should be over: it must find nothing to do.
    await sleep((o.reaperGraceSeconds + 1) * 1000);
    const prune = await http.call('POST', '/v1/sandboxes/prune', {}, { timeoutMs: 120_000 }).catch((e: Error) => ({ status: 0, body: e.message }));
    log(`final prune: ${JSON.stringify(prune.body).slice(0, 300)}`);
    await sleep(1000);
    await monitor.stop();

    // --- measure --------------------------------------------------------------------------------
    const report = await measure({
      o, t0, stateDir, db: db.url, driver, pool, client, taskQueue, monitor, foreign, worker, api, temporalOutages, http,
      plan, byKind, createOutcome, converged, prune: prune.body, failures, safetyNet, knownIds,
    });
    return report;
  } finally {
    // --- safety net (after measuring): nothing of this run may keep running ---------------------
    await worker.stop().catch(() => {});
    await api.stop().catch(() => {});
    for (const p of await processesMentioning(stateDir)) {
      safetyNet.push(`killed stray process ${p.pid} (${p.cmdline.split(' ')[0]}) of sandbox ${/process\/([^/\s]+)\/work/.exec(p.cmdline)?.[1] ?? '?'}`);
      for (const c of childrenOf(p.pid)) killPid(c);
      killPid(p.pid);
    }
    for (const fn of cleanups.reverse()) await fn().catch((err: Error) => log(`cleanup: ${err.message}`));
    if (!o.keep) rmSync(root, { recursive: true, force: true });
    else log(`kept ${root}`);
  }
}

// --- plan -----------------------------------------------------------------------------------------

interface PlannedSandbox {
  n: number;
  kind: Kind;
  ttl: number;
  wait: boolean;
  renewals: number;
  atMs: number;
  session?: number;
}
interface PlannedSession {
  atMs: number;
  heartbeatTimeout: number;
  end: 'delete' | 'lapse';
  heartbeats: number;
  members: PlannedSandbox[];
}

function makePlan(o: ChaosOptions, rnd: () => number, int: (r: [number, number]) => number, uniform: (r: [number, number]) => number) {
  const sandboxes: PlannedSandbox[] = [];
  const sessions: PlannedSession[] = [];
  const windowMs = o.creationWindowSeconds * 1000;
  let n = 0;
  while (n < o.sandboxes) {
    const roll = rnd();
    const atMs = uniform([0, windowMs]);
    if (roll < 0.1) {
      const s: PlannedSession = {
        atMs,
        heartbeatTimeout: int([4, 7]),
        end: rnd() < 0.5 ? 'delete' : 'lapse',
        heartbeats: int([0, 2]),
        members: [],
      };
      const k = Math.min(int([2, 4]), o.sandboxes - n);
      for (let i = 0; i < k; i++) {
        const p: PlannedSandbox = { n: n++, kind: 'session', ttl: int([8, Math.max(8, o.ttlSeconds[1])]), wait: rnd() < 0.5, renewals: 0, atMs, session: sessions.length };
        sandboxes.push(p);
        s.members.push(p);
      }
      sessions.push(s);
      continue;
    }
    const kind: Kind = roll < 0.45 ? 'expire' : roll < 0.6 ? 'renew-update' : roll < 0.75 ? 'renew-signal' : 'destroy';
    sandboxes.push({ n: n++, kind, ttl: int(o.ttlSeconds), wait: rnd() < 0.5, renewals: kind.startsWith('renew') ? int([1, 2]) : 0, atMs });
  }
  return { sandboxes, sessions };
}

// --- foreign VM -------------------------------------------------------------------------------------

interface ForeignVm {
  dirs: string[];
  files: Map<string, string>;
  process: RecordedProcess;
}

/**
 * Two directories under <stateDir>/process/ that Hourglass did not create (no sandbox.json), one
 * named like a sandbox id, with a disk file and a "VM" process (a sleep started by this script,
 * cwd inside it) recorded in foreign.json.
 */
function plantForeignVm(processRoot: string): ForeignVm {
  const dirs = [path.join(processRoot, 'foreign-vm'), path.join(processRoot, 'sbx-f0f0f0f0f0f0f0f0')];
  const files = new Map<string, string>();
  for (const dir of dirs) mkdirSync(path.join(dir, 'work'), { recursive: true });
  const child = spawn('sleep', ['infinity'], { cwd: path.join(dirs[0]!, 'work'), detached: true, stdio: 'ignore' });
  child.unref();
  const proc: RecordedProcess = { pid: child.pid!, startTime: readStartTimeSync(child.pid!) };
  for (const dir of dirs) {
    const disk = path.join(dir, 'disk.img');
    writeFileSync(disk, randomBytes(64 * 1024));
    writeFileSync(path.join(dir, 'foreign.json'), JSON.stringify({ owner: 'not hourglass', holder: proc }, null, 2));
    writeFileSync(path.join(dir, 'work', 'data.txt'), `foreign data ${randomBytes(8).toString('hex')}\n`);
  }
  for (const dir of dirs) for (const f of walk(dir)) files.set(f, fileHash(f));
  return { dirs, files, process: proc };
}

async function foreignTouched(f: ForeignVm): Promise<string[]> {
  const problems: string[] = [];
  for (const [file, hash] of f.files) {
    try {
      if (fileHash(file) !== hash) problems.push(`${file} changed`);
    } catch {
      problems.push(`${file} is gone`);
    }
  }
  for (const dir of f.dirs) {
    try {
      const now = new Set(walk(dir));
      for (const x of now) if (!f.files.has(x)) problems.push(`${x} appeared`);
    } catch {
      problems.push(`${dir} is gone`);
    }
  }
  if (!(await isAlive(f.process))) problems.push(`foreign process ${f.process.pid} is dead`);
  return problems;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function fileHash(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function readStartTimeSync(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

// --- measurement ------------------------------------------------------------------------------------

interface MeasureInput {
  o: ChaosOptions;
  t0: number;
  stateDir: string;
  db: string;
  driver: ProcessHypervisor;
  pool: pg.Pool;
  client: Client;
  taskQueue: string;
  monitor: StateDirMonitor;
  foreign: ForeignVm;
  worker: ChildService;
  api: ChildService;
  temporalOutages: Outage[];
  http: ChaosClient;
  plan: { sandboxes: PlannedSandbox[]; sessions: PlannedSession[] };
  byKind: Record<string, number>;
  createOutcome: { ok: number; refused: Record<string, number>; failed: number };
  converged: number | null;
  prune: unknown;
  failures: string[];
  safetyNet: string[];
  knownIds: Set<string>;
}

async function measure(m: MeasureInput): Promise<ChaosReport> {
  const { o, pool, monitor } = m;
  const rows = (
    await pool.query<{ id: string; state: string; expires_at: Date | null; destroy_reason: string | null }>(
      'SELECT id, state, expires_at, destroy_reason FROM sandboxes',
    )
  ).rows;
  const events = (
    await pool.query<{ sandbox_id: string; to_state: string; reason: string; at: Date }>(
      'SELECT sandbox_id, to_state, reason, at FROM sandbox_events ORDER BY sandbox_id, seq',
    )
  ).rows;
  const destroyedEvents = new Map<string, { at: number; reason: string }[]>();
  for (const e of events) {
    if (e.to_state !== 'DESTROYED') continue;
    const list = destroyedEvents.get(e.sandbox_id) ?? [];
    list.push({ at: e.at.getTime(), reason: e.reason });
    destroyedEvents.set(e.sandbox_id, list);
  }

  // Leaks.
  const liveVms = (await m.driver.list()).length;
  const foreignNames = new Set(m.foreign.dirs.map((d) => path.basename(d)));
  const leftoverDirs = readdirSync(path.join(m.stateDir, 'process')).filter((n) => !foreignNames.has(n));
  const liveHolders = await monitor.liveHolders();
  // A bwrap holder nobody recorded (e.g. the worker died between spawning it and writing sandbox.json).
  const stray = (await processesMentioning(m.stateDir)).map((p) => `pid ${p.pid} (${p.cmdline.split(' ')[0]}) of sandbox ${/process\/([^/\s]+)\/work/.exec(p.cmdline)?.[1] ?? '?'}`);
  const count = async (query: string) => (await m.client.workflow.count(query)).count;
  const openSandboxWorkflows = await count(`WorkflowType = 'sandboxWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${m.taskQueue}'`);
  const openSessionWorkflows = await count(`WorkflowType = 'sessionWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${m.taskQueue}'`);

  // Exactly once.
  const all = new Set<string>([...rows.map((r) => r.id), ...monitor.dirs.keys(), ...m.knownIds]);
  const perSandbox: Record<string, number> = {};
  const without: string[] = [];
  const several: string[] = [];
  for (const id of all) {
    const n = destroyedEvents.get(id)?.length ?? 0;
    // An id from an Idempotency-Key whose create never reached Temporal has no row and no dir: not a sandbox.
    if (n === 0 && !rows.some((r) => r.id === id) && !monitor.dirs.has(id)) continue;
    perSandbox[n] = (perSandbox[n] ?? 0) + 1;
    if (n === 0) without.push(id);
    if (n > 1) several.push(`${id}: ${destroyedEvents.get(id)!.map((d) => d.reason).join(' | ')}`);
  }
  const holdersPer: Record<string, number> = {};
  for (const rec of monitor.dirs.values()) holdersPer[rec.holders.length] = (holdersPer[rec.holders.length] ?? 0) + 1;
  const dirsRecreated = [...monitor.dirs.values()].filter((r) => r.lives.length > 1).map((r) => `${r.id} (${r.lives.length} lives)`);
  const vmAlreadyGone = [...destroyedEvents.values()].flat().filter((d) => d.reason.includes('vm already gone')).length;

  // Injected faults, as the worker logged them (one line per failed attempt, naming the sandbox).
  const injected: Record<string, number> = {};
  const destroyFaults = new Map<string, number>();
  for (const line of m.worker.lines) {
    const match = /injected fault: (\w+ \(\w+\)) (\S+)/.exec(line);
    if (!match) continue;
    injected[match[1]!] = (injected[match[1]!] ?? 0) + 1;
    if (match[1]!.startsWith('destroy')) destroyFaults.set(match[2]!, (destroyFaults.get(match[2]!) ?? 0) + 1);
  }

  // Timing.
  const disturbances = [...m.worker.outages, ...m.temporalOutages].map((x) => ({
    start: x.start,
    end: (x.end ?? Date.now()) + o.recoveryMarginSeconds * 1000,
  }));
  const boundMs = o.overshootBoundSeconds * 1000;
  const obsAll: number[] = [];
  const obsCalm: number[] = [];
  const obsDisturbed: number[] = [];
  const regAll: number[] = [];
  const calmOver: ChaosReport['timing']['calmOverBound'] = [];
  const calmByFaults: Record<string, number[]> = {};
  const worst: ChaosReport['timing']['worst'] = [];
  let endedEarly = 0;
  let neverRunning = 0;
  const reasons: Record<string, number> = {};
  for (const r of rows) {
    const firstDestroyed = destroyedEvents.get(r.id)?.[0];
    const reason = (r.destroy_reason ?? '(none)').replace(/sbx-[0-9a-f]+/g, 'sbx-…').replace(/ses-[0-9a-f]+/g, 'ses-…');
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    if (!r.expires_at) {
      neverRunning += 1;
      continue;
    }
    const expiresAt = r.expires_at.getTime();
    const dir = monitor.dirs.get(r.id);
    const goneAt = dir?.lives[0]?.goneAt ?? firstDestroyed?.at;
    if (firstDestroyed) regAll.push((firstDestroyed.at - expiresAt) / 1000);
    if (goneAt === undefined) continue;
    const over = goneAt - expiresAt;
    if (over < 0) {
      endedEarly += 1;
      continue;
    }
    obsAll.push(over / 1000);
    const disturbed = disturbances.some((d) => d.start <= expiresAt + boundMs && d.end >= expiresAt);
    const faults = destroyFaults.get(r.id) ?? 0;
    (disturbed ? obsDisturbed : obsCalm).push(over / 1000);
    if (!disturbed) {
      const k = faults >= 3 ? '3+' : String(faults);
      (calmByFaults[k] ??= []).push(over / 1000);
    }
    const item = { id: r.id, overshoot: over / 1000, reason: r.destroy_reason ?? '', disturbed, destroyFaults: faults };
    worst.push(item);
    // On time = within the bound, plus the backoff the product's destroy retry policy (0.5 s,
    // ×1.5, ≤ 5 s; workflows/sandbox.ts) imposes after each injected destroy fault this sandbox suffered.
    if (!disturbed && over > boundMs + retryAllowanceMs(faults)) calmOver.push(item);
  }
  worst.sort((a, b) => b.overshoot - a.overshoot);


  const runs = (await pool.query<{ counts: Record<string, number> }>('SELECT counts FROM reaper_runs')).rows;
  const reaperCounts: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.counts)) reaperCounts[k] = (reaperCounts[k] ?? 0) + v;

  const outages = [...m.worker.outages, ...m.api.outages, ...m.temporalOutages]
    .sort((a, b) => a.start - b.start)
    .map((x) => ({ service: x.service, cause: x.cause, startSecond: Math.round((x.start - m.t0) / 100) / 10, seconds: x.end ? (x.end - x.start) / 1000 : null }));

  return {
    seed: o.seed,
    durationSeconds: (Date.now() - m.t0) / 1000,
    stateDir: m.stateDir,
    database: m.db,
    sandboxes: {
      planned: m.plan.sandboxes.length,
      byKind: m.byKind,
      sessions: { deleted: m.plan.sessions.filter((s) => s.end === 'delete').length, lapsed: m.plan.sessions.filter((s) => s.end === 'lapse').length },
      createCalls: m.createOutcome,
    },
    chaos: {
      workerKills: m.worker.kills,
      apiKills: m.api.kills,
      temporalRestarts: m.temporalOutages.length,
      crashes: [...m.worker.crashes.map((c) => ({ service: 'worker', ...c })), ...m.api.crashes.map((c) => ({ service: 'api', ...c }))].map((c) => ({
        ...c,
        at: `+${((c.at - m.t0) / 1000).toFixed(1)} s`,
      })),
      outages,
      injectedFaults: injected,
      api: m.http.stats,
    },
    leaks: {
      liveVms,
      leftoverDirs,
      liveHolders: liveHolders.length,
      strayProcesses: stray,
      rowsNotDestroyed: rows.filter((r) => r.state !== 'DESTROYED').map((r) => `${r.id} ${r.state}`),
      openSandboxWorkflows,
      openSessionWorkflows,
      foreignTouched: await foreignTouched(m.foreign),
    },
    exactlyOnce: {
      destroyedEventsPerSandbox: perSandbox,
      sandboxesWithoutDestroyedEvent: without,
      sandboxesWithSeveralDestroyedEvents: several,
      dirsRecreated,
      holdersPerSandbox: holdersPer,
      vmAlreadyGoneReasons: vmAlreadyGone,
    },
    timing: {
      definition:
        'overshoot = (first poll, every 200 ms, that found <stateDir>/process/<id> gone) − expiresAt (the final lease end in the registry row, renewals included); ' +
        `only sandboxes still present at their lease end. "disturbed" = a worker or Temporal outage, extended by ${o.recoveryMarginSeconds} s after it was back, overlaps [expiresAt, expiresAt + ${o.overshootBoundSeconds} s]. ` +
        `Bound for calm sandboxes: ${o.overshootBoundSeconds} s + the destroy retry backoff owed to the injected destroy faults each one suffered (0.5 s, ×1.5, … ≤ 5 s). ` +
        'registry = first DESTROYED event "at" − expiresAt.',
      observedAll: dist(obsAll),
      observedCalm: dist(obsCalm),
      observedDisturbed: dist(obsDisturbed),
      calmByDestroyFaults: Object.fromEntries(Object.entries(calmByFaults).sort().map(([k, v]) => [k, dist(v)])),
      registryAll: dist(regAll),
      endedEarly,
      neverRunning,
      calmOverBound: calmOver,
      worst: worst.slice(0, 8),
      convergedSecondsAfterLastLease: m.converged,
      monitorMaxPollGapMs: monitor.maxPollGapMs,
    },
    destroyReasons: reasons,
    reaper: { runs: runs.length, counts: reaperCounts, finalPrune: m.prune },
    safetyNet: m.safetyNet,
    failures: m.failures,
  };
}

/** The leak figures that must all be zero (and the bound that must hold), as messages. */
export function problemsOf(r: ChaosReport): string[] {
  const p: string[] = [];
  const L = r.leaks;
  if (L.liveVms) p.push(`${L.liveVms} sandboxes still live on the hypervisor`);
  if (L.leftoverDirs.length) p.push(`leftover sandbox directories: ${L.leftoverDirs.join(', ')}`);
  if (L.liveHolders) p.push(`${L.liveHolders} holder processes alive`);
  if (L.strayProcesses.length) p.push(`stray processes: ${L.strayProcesses.join('; ')}`);
  if (L.rowsNotDestroyed.length) p.push(`registry rows not DESTROYED: ${L.rowsNotDestroyed.join(', ')}`);
  if (L.openSandboxWorkflows) p.push(`${L.openSandboxWorkflows} sandbox workflows still open`);
  if (L.foreignTouched.length) p.push(`foreign VM touched: ${L.foreignTouched.join('; ')}`);
  const X = r.exactlyOnce;
  if (X.sandboxesWithoutDestroyedEvent.length) p.push(`no DESTROYED event: ${X.sandboxesWithoutDestroyedEvent.join(', ')}`);
  if (X.sandboxesWithSeveralDestroyedEvents.length) p.push(`several DESTROYED events: ${X.sandboxesWithSeveralDestroyedEvents.join('; ')}`);
  if (X.dirsRecreated.length) p.push(`sandbox directories that came back after being removed: ${X.dirsRecreated.join(', ')}`);
  if (r.timing.calmOverBound.length) {
    p.push(`overshoot bound broken outside outages: ${r.timing.calmOverBound.map((c) => `${c.id} +${c.overshoot.toFixed(1)} s, ${c.destroyFaults} destroy faults (${c.reason})`).join('; ')}`);
  }
  if (r.timing.convergedSecondsAfterLastLease === null) p.push('did not converge');
  return p;
}

export function formatReport(r: ChaosReport): string {
  const s = (d: Distribution) =>
    d.n ? `n=${d.n}  p50 ${d.p50!.toFixed(2)} s  p95 ${d.p95!.toFixed(2)} s  max ${d.max!.toFixed(2)} s` : 'n=0';
  const j = (v: unknown) => JSON.stringify(v);
  const rows: [string, string][] = [
    ['duration', `${r.durationSeconds.toFixed(0)} s (seed ${r.seed})`],
    ['sandboxes planned', `${r.sandboxes.planned} ${j(r.sandboxes.byKind)}; sessions deleted ${r.sandboxes.sessions.deleted}, lapsed ${r.sandboxes.sessions.lapsed}`],
    ['create calls', `ok ${r.sandboxes.createCalls.ok}, refused ${j(r.sandboxes.createCalls.refused)}, gave up ${r.sandboxes.createCalls.failed}`],
    ['— leaks —', ''],
    ['live sandboxes (driver list)', String(r.leaks.liveVms)],
    ['leftover sandbox dirs', String(r.leaks.leftoverDirs.length)],
    ['holder processes alive', `${r.leaks.liveHolders} recorded, ${r.leaks.strayProcesses.length} stray (cmdline names the state dir)`],
    ['registry rows not DESTROYED', String(r.leaks.rowsNotDestroyed.length)],
    ['open workflows', `sandbox ${r.leaks.openSandboxWorkflows}, session ${r.leaks.openSessionWorkflows}`],
    ['foreign VM', r.leaks.foreignTouched.length ? `TOUCHED: ${r.leaks.foreignTouched.join('; ')}` : 'untouched (files, hashes, process)'],
    ['— exactly once —', ''],
    ['DESTROYED events per sandbox', j(r.exactlyOnce.destroyedEventsPerSandbox)],
    ['dirs that came back', String(r.exactlyOnce.dirsRecreated.length)],
    ['holder processes per sandbox', j(r.exactlyOnce.holdersPerSandbox)],
    ['"(vm already gone)" destroys', String(r.exactlyOnce.vmAlreadyGoneReasons)],
    ['— overshoot (gone − lease end) —', ''],
    ['all (observed)', s(r.timing.observedAll)],
    ['calm (no outage near)', s(r.timing.observedCalm)],
    ['disturbed', s(r.timing.observedDisturbed)],
    ...Object.entries(r.timing.calmByDestroyFaults).map(([k, d]): [string, string] => [`calm, ${k} destroy faults`, s(d)]),
    ['registry DESTROYED event', s(r.timing.registryAll)],
    ['ended before lease / never RUNNING', `${r.timing.endedEarly} / ${r.timing.neverRunning}`],
    ['calm over bound (+retry backoff)', r.timing.calmOverBound.length ? r.timing.calmOverBound.map((c) => `${c.id} +${c.overshoot.toFixed(1)} s, ${c.destroyFaults} faults (${c.reason})`).join('; ') : 'none'],
    ['worst', r.timing.worst.slice(0, 5).map((w) => `+${w.overshoot.toFixed(1)} s ${w.disturbed ? 'disturbed' : 'calm'}, ${w.destroyFaults} destroy faults (${w.reason})`).join('; ')],
    ['converged after last lease', r.timing.convergedSecondsAfterLastLease === null ? 'NO' : `${r.timing.convergedSecondsAfterLastLease.toFixed(1)} s`],
    ['— chaos —', ''],
    ['SIGKILLs', `worker ${r.chaos.workerKills}, api ${r.chaos.apiKills}; Temporal restarts ${r.chaos.temporalRestarts}; crashes ${r.chaos.crashes.length}${r.chaos.crashes.length ? ' ' + j(r.chaos.crashes) : ''}`],
    ['outages', r.chaos.outages.map((x) => `${x.service}@${x.startSecond}s ${x.seconds === null ? '?' : x.seconds.toFixed(1)}s`).join(', ')],
    ['injected faults (worker log)', `${Object.values(r.chaos.injectedFaults).reduce((a, b) => a + b, 0)} ${j(r.chaos.injectedFaults)}`],
    ['API calls', `${r.chaos.api.calls}, retries ${r.chaos.api.retries} (in ${r.chaos.api.retriedCalls} calls) ${j(r.chaos.api.retryCauses)}, gave up ${r.chaos.api.failedCalls}, 409s ${r.chaos.api.conflicts}`],
    ['reaper', `${r.reaper.runs} runs, fixed ${j(r.reaper.counts)}; final prune ${j(r.reaper.finalPrune).slice(0, 200)}`],
    ['destroy reasons', j(r.destroyReasons)],
    ['safety net', r.safetyNet.length ? r.safetyNet.join('; ') : 'found nothing'],
  ];
  if (r.failures.length) rows.push(['other failures', r.failures.join('; ')]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => (v === '' ? `\n${k}` : `${k.padEnd(w)}  ${v}`)).join('\n');
}

/** Sum of the destroy activity's retry intervals after `faults` failed attempts (0.5 s, ×1.5, ≤ 5 s). */
function retryAllowanceMs(faults: number): number {
  let total = 0;
  for (let i = 0; i < faults; i++) total += Math.min(5000, 500 * 1.5 ** i);
  return total;
}

function dist(xs: number[]): Distribution {
  if (!xs.length) return { n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { n: s.length, min: s[0], p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mirrors api/sandbox-service.ts: the sandbox id an Idempotency-Key maps to (owner "local": no tokens). */
function idFromKey(owner: string, key: string): string {
  return `sbx-${createHash('sha256').update(`${owner}\0${key}`).digest('hex').slice(0, 16)}`;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killPid(pid: number) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

