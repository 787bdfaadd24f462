// After the run: what leaked, whether each sandbox was destroyed exactly once, and how late each VM
// was really gone, from the registry, Temporal's visibility, the driver, the state-dir monitor and
// the worker's log.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type pg from 'pg';
import type { ProcessHypervisor } from '../../hypervisors/process/driver';
import type { ChaosClient } from './client';
import { foreignTouched, type ForeignVm } from './foreign-vm';
import { processesMentioning, strayDescription, type StateDirMonitor } from './monitor';
import { countByKind, type ChaosOptions, type ChaosPlan } from './plan';
import { dist, type ChaosReport } from './report';
import type { ChildService, Outage } from './services';
import type { Workload } from './workload';

export interface MeasureInput {
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
  plan: ChaosPlan;
  /** what the clients saw: create outcomes, and every id an Idempotency-Key mapped to */
  workload: Pick<Workload, 'createOutcome' | 'knownIds'>;
  converged: number | null;
  prune: unknown;
  failures: string[];
  safetyNet: string[];
}

interface Row {
  id: string;
  state: string;
  expires_at: Date | null;
  destroy_reason: string | null;
}
type DestroyedEvents = Map<string, { at: number; reason: string }[]>;

export async function measure(m: MeasureInput): Promise<ChaosReport> {
  const { o, pool } = m;
  const rows = (await pool.query<Row>('SELECT id, state, expires_at, destroy_reason FROM sandboxes')).rows;
  const destroyedEvents = await destroyedEventsOf(pool);
  const leaks = await leaksOf(m, rows);
  const exactlyOnce = exactlyOnceOf(m, rows, destroyedEvents);
  const { injected, destroyFaults } = injectedFaults(m.worker.lines);
  const { timing, reasons } = timingOf(m, rows, destroyedEvents, destroyFaults);

  const runs = (await pool.query<{ counts: Record<string, number> }>('SELECT counts FROM reaper_runs')).rows;
  const reaperCounts: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.counts)) reaperCounts[k] = (reaperCounts[k] ?? 0) + v;

  const outages = [...m.worker.outages, ...m.api.outages, ...m.temporalOutages]
    .sort((a, b) => a.start - b.start)
    .map((x) => ({
      service: x.service,
      cause: x.cause,
      startSecond: Math.round((x.start - m.t0) / 100) / 10,
      seconds: x.end ? (x.end - x.start) / 1000 : null,
    }));
  const crashes = [
    ...m.worker.crashes.map((c) => ({ service: 'worker', ...c })),
    ...m.api.crashes.map((c) => ({ service: 'api', ...c })),
  ].map((c) => ({ ...c, at: `+${((c.at - m.t0) / 1000).toFixed(1)} s` }));
  const sessions = m.plan.sessions;

  return {
    seed: o.seed,
    durationSeconds: (Date.now() - m.t0) / 1000,
    stateDir: m.stateDir,
    database: m.db,
    sandboxes: {
      planned: m.plan.sandboxes.length,
      byKind: countByKind(m.plan),
      sessions: {
        deleted: sessions.filter((s) => s.end === 'delete').length,
        lapsed: sessions.filter((s) => s.end === 'lapse').length,
      },
      createCalls: m.workload.createOutcome,
    },
    chaos: {
      workerKills: m.worker.kills,
      apiKills: m.api.kills,
      temporalRestarts: m.temporalOutages.length,
      crashes,
      outages,
      injectedFaults: injected,
      api: m.http.stats,
    },
    leaks,
    exactlyOnce,
    timing,
    destroyReasons: reasons,
    reaper: { runs: runs.length, counts: reaperCounts, finalPrune: m.prune },
    safetyNet: m.safetyNet,
    failures: m.failures,
  };
}

async function destroyedEventsOf(pool: pg.Pool): Promise<DestroyedEvents> {
  const events = (
    await pool.query<{ sandbox_id: string; to_state: string; reason: string; at: Date }>(
      'SELECT sandbox_id, to_state, reason, at FROM sandbox_events ORDER BY sandbox_id, seq',
    )
  ).rows;
  const destroyed: DestroyedEvents = new Map();
  for (const e of events) {
    if (e.to_state !== 'DESTROYED') continue;
    const list = destroyed.get(e.sandbox_id) ?? [];
    list.push({ at: e.at.getTime(), reason: e.reason });
    destroyed.set(e.sandbox_id, list);
  }
  return destroyed;
}

async function leaksOf(m: MeasureInput, rows: Row[]): Promise<ChaosReport['leaks']> {
  const liveVms = (await m.driver.list()).length;
  const foreignNames = new Set(m.foreign.dirs.map((d) => path.basename(d)));
  const leftoverDirs = readdirSync(path.join(m.stateDir, 'process')).filter((n) => !foreignNames.has(n));
  const liveHolders = await m.monitor.liveHolders();
  // A bwrap holder nobody recorded (e.g. the worker died between spawning it and writing sandbox.json).
  const stray = (await processesMentioning(m.stateDir)).map((p) => `pid ${strayDescription(p)}`);
  const open = async (type: string) =>
    (
      await m.client.workflow.count(
        `WorkflowType = '${type}' AND ExecutionStatus = 'Running' AND TaskQueue = '${m.taskQueue}'`,
      )
    ).count;
  return {
    liveVms,
    leftoverDirs,
    liveHolders: liveHolders.length,
    strayProcesses: stray,
    rowsNotDestroyed: rows.filter((r) => r.state !== 'DESTROYED').map((r) => `${r.id} ${r.state}`),
    openSandboxWorkflows: await open('sandboxWorkflow'),
    openSessionWorkflows: await open('sessionWorkflow'),
    foreignTouched: await foreignTouched(m.foreign),
  };
}

function exactlyOnceOf(m: MeasureInput, rows: Row[], destroyedEvents: DestroyedEvents): ChaosReport['exactlyOnce'] {
  const { monitor } = m;
  const all = new Set<string>([...rows.map((r) => r.id), ...monitor.dirs.keys(), ...m.workload.knownIds]);
  const perSandbox: Record<string, number> = {};
  const without: string[] = [];
  const several: string[] = [];
  for (const id of all) {
    const n = destroyedEvents.get(id)?.length ?? 0;
    // An id from an Idempotency-Key whose create never reached Temporal has no row and no dir: not a sandbox.
    if (n === 0 && !rows.some((r) => r.id === id) && !monitor.dirs.has(id)) continue;
    perSandbox[n] = (perSandbox[n] ?? 0) + 1;
    if (n === 0) without.push(id);
    if (n > 1) {
      several.push(
        `${id}: ${destroyedEvents
          .get(id)!
          .map((d) => d.reason)
          .join(' | ')}`,
      );
    }
  }
  const holdersPer: Record<string, number> = {};
  for (const rec of monitor.dirs.values()) holdersPer[rec.holders.length] = (holdersPer[rec.holders.length] ?? 0) + 1;
  const dirsRecreated = [...monitor.dirs.values()]
    .filter((r) => r.lives.length > 1)
    .map((r) => `${r.id} (${r.lives.length} lives)`);
  const vmAlreadyGone = [...destroyedEvents.values()].flat().filter((d) => d.reason.includes('vm already gone'));
  return {
    destroyedEventsPerSandbox: perSandbox,
    sandboxesWithoutDestroyedEvent: without,
    sandboxesWithSeveralDestroyedEvents: several,
    dirsRecreated,
    holdersPerSandbox: holdersPer,
    vmAlreadyGoneReasons: vmAlreadyGone.length,
  };
}

/** Injected faults, as the worker logged them (one line per failed attempt, naming the sandbox). */
export function injectedFaults(workerLog: string[]): {
  injected: Record<string, number>;
  destroyFaults: Map<string, number>;
} {
  const injected: Record<string, number> = {};
  const destroyFaults = new Map<string, number>();
  for (const line of workerLog) {
    const match = /injected fault: (\w+ \(\w+\)) (\S+)/.exec(line);
    if (!match) continue;
    injected[match[1]!] = (injected[match[1]!] ?? 0) + 1;
    if (match[1]!.startsWith('destroy')) destroyFaults.set(match[2]!, (destroyFaults.get(match[2]!) ?? 0) + 1);
  }
  return { injected, destroyFaults };
}

function timingOf(
  m: MeasureInput,
  rows: Row[],
  destroyedEvents: DestroyedEvents,
  destroyFaults: Map<string, number>,
): { timing: ChaosReport['timing']; reasons: Record<string, number> } {
  const { o, monitor } = m;
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

  const timing: ChaosReport['timing'] = {
    definition:
      'overshoot = (first poll, every 200 ms, that found <stateDir>/process/<id> gone) − expiresAt ' +
      '(the final lease end in the registry row, renewals included); ' +
      'only sandboxes still present at their lease end. "disturbed" = a worker or Temporal outage, ' +
      `extended by ${o.recoveryMarginSeconds} s after it was back, ` +
      `overlaps [expiresAt, expiresAt + ${o.overshootBoundSeconds} s]. ` +
      `Bound for calm sandboxes: ${o.overshootBoundSeconds} s + the destroy retry backoff owed to the injected ` +
      'destroy faults each one suffered (0.5 s, ×1.5, … ≤ 5 s). ' +
      'registry = first DESTROYED event "at" − expiresAt.',
    observedAll: dist(obsAll),
    observedCalm: dist(obsCalm),
    observedDisturbed: dist(obsDisturbed),
    calmByDestroyFaults: Object.fromEntries(
      Object.entries(calmByFaults)
        .sort()
        .map(([k, v]) => [k, dist(v)]),
    ),
    registryAll: dist(regAll),
    endedEarly,
    neverRunning,
    calmOverBound: calmOver,
    worst: worst.slice(0, 8),
    convergedSecondsAfterLastLease: m.converged,
    monitorMaxPollGapMs: monitor.maxPollGapMs,
  };
  return { timing, reasons };
}

/** Sum of the destroy activity's retry intervals after `faults` failed attempts (0.5 s, ×1.5, ≤ 5 s). */
export function retryAllowanceMs(faults: number): number {
  let total = 0;
  for (let i = 0; i < faults; i++) total += Math.min(5000, 500 * 1.5 ** i);
  return total;
}
