// What a chaos run found: the report's shape, the verdict (the figures that must be zero and the
// bound that must hold) and the table `npm run chaos` prints.
import { quantile } from '../lib/stats';
import type { ApiStats } from './client';

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
  sandboxes: {
    planned: number;
    byKind: Record<string, number>;
    sessions: { deleted: number; lapsed: number };
    createCalls: { ok: number; refused: Record<string, number>; failed: number };
  };
  chaos: {
    workerKills: number;
    apiKills: number;
    temporalRestarts: number;
    crashes: { service: string; at: string; code: number | null; signal: string | null }[];
    outages: { service: string; cause: string; startSecond: number; seconds: number | null }[];
    injectedFaults: Record<string, number>;
    api: ApiStats;
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
  if (X.sandboxesWithoutDestroyedEvent.length) {
    p.push(`no DESTROYED event: ${X.sandboxesWithoutDestroyedEvent.join(', ')}`);
  }
  if (X.sandboxesWithSeveralDestroyedEvents.length) {
    p.push(`several DESTROYED events: ${X.sandboxesWithSeveralDestroyedEvents.join('; ')}`);
  }
  if (X.dirsRecreated.length) {
    p.push(`sandbox directories that came back after being removed: ${X.dirsRecreated.join(', ')}`);
  }
  if (r.timing.calmOverBound.length) {
    const over = r.timing.calmOverBound.map(
      (c) => `${c.id} +${c.overshoot.toFixed(1)} s, ${c.destroyFaults} destroy faults (${c.reason})`,
    );
    p.push(`overshoot bound broken outside outages: ${over.join('; ')}`);
  }
  if (r.timing.convergedSecondsAfterLastLease === null) p.push('did not converge');
  return p;
}

export function formatReport(r: ChaosReport): string {
  const s = (d: Distribution) =>
    d.n ? `n=${d.n}  p50 ${d.p50!.toFixed(2)} s  p95 ${d.p95!.toFixed(2)} s  max ${d.max!.toFixed(2)} s` : 'n=0';
  const j = (v: unknown) => JSON.stringify(v);
  const { sandboxes: sb, leaks, exactlyOnce: once, timing: t, chaos: c } = r;
  const converged = t.convergedSecondsAfterLastLease;
  const calmOver = t.calmOverBound.map(
    (x) => `${x.id} +${x.overshoot.toFixed(1)} s, ${x.destroyFaults} faults (${x.reason})`,
  );
  const worst = t.worst.slice(0, 5).map((w) => {
    const where = w.disturbed ? 'disturbed' : 'calm';
    return `+${w.overshoot.toFixed(1)} s ${where}, ${w.destroyFaults} destroy faults (${w.reason})`;
  });
  const crashes = `crashes ${c.crashes.length}${c.crashes.length ? ' ' + j(c.crashes) : ''}`;
  const outages = c.outages.map(
    (x) => `${x.service}@${x.startSecond}s ${x.seconds === null ? '?' : x.seconds.toFixed(1)}s`,
  );
  const foreign = leaks.foreignTouched.length
    ? `TOUCHED: ${leaks.foreignTouched.join('; ')}`
    : 'untouched (files, hashes, process)';
  const injected = Object.values(c.injectedFaults).reduce((a, b) => a + b, 0);
  const rows: [string, string][] = [
    ['duration', `${r.durationSeconds.toFixed(0)} s (seed ${r.seed})`],
    [
      'sandboxes planned',
      `${sb.planned} ${j(sb.byKind)}; sessions deleted ${sb.sessions.deleted}, lapsed ${sb.sessions.lapsed}`,
    ],
    ['create calls', `ok ${sb.createCalls.ok}, refused ${j(sb.createCalls.refused)}, gave up ${sb.createCalls.failed}`],
    ['— leaks —', ''],
    ['live sandboxes (driver list)', String(leaks.liveVms)],
    ['leftover sandbox dirs', String(leaks.leftoverDirs.length)],
    [
      'holder processes alive',
      `${leaks.liveHolders} recorded, ${leaks.strayProcesses.length} stray (cmdline names the state dir)`,
    ],
    ['registry rows not DESTROYED', String(leaks.rowsNotDestroyed.length)],
    ['open workflows', `sandbox ${leaks.openSandboxWorkflows}, session ${leaks.openSessionWorkflows}`],
    ['foreign VM', foreign],
    ['— exactly once —', ''],
    ['DESTROYED events per sandbox', j(once.destroyedEventsPerSandbox)],
    ['dirs that came back', String(once.dirsRecreated.length)],
    ['holder processes per sandbox', j(once.holdersPerSandbox)],
    ['"(vm already gone)" destroys', String(once.vmAlreadyGoneReasons)],
    ['— overshoot (gone − lease end) —', ''],
    ['all (observed)', s(t.observedAll)],
    ['calm (no outage near)', s(t.observedCalm)],
    ['disturbed', s(t.observedDisturbed)],
    ...Object.entries(t.calmByDestroyFaults).map(([k, d]): [string, string] => [`calm, ${k} destroy faults`, s(d)]),
    ['registry DESTROYED event', s(t.registryAll)],
    ['ended before lease / never RUNNING', `${t.endedEarly} / ${t.neverRunning}`],
    ['calm over bound (+retry backoff)', calmOver.length ? calmOver.join('; ') : 'none'],
    ['worst', worst.join('; ')],
    ['converged after last lease', converged === null ? 'NO' : `${converged.toFixed(1)} s`],
    ['— chaos —', ''],
    ['SIGKILLs', `worker ${c.workerKills}, api ${c.apiKills}; Temporal restarts ${c.temporalRestarts}; ${crashes}`],
    ['outages', outages.join(', ')],
    ['injected faults (worker log)', `${injected} ${j(c.injectedFaults)}`],
    [
      'API calls',
      `${c.api.calls}, retries ${c.api.retries} (in ${c.api.retriedCalls} calls) ${j(c.api.retryCauses)}, ` +
        `gave up ${c.api.failedCalls}, 409s ${c.api.conflicts}`,
    ],
    [
      'reaper',
      `${r.reaper.runs} runs, fixed ${j(r.reaper.counts)}; final prune ${j(r.reaper.finalPrune).slice(0, 200)}`,
    ],
    ['destroy reasons', j(r.destroyReasons)],
    ['safety net', r.safetyNet.length ? r.safetyNet.join('; ') : 'found nothing'],
  ];
  if (r.failures.length) rows.push(['other failures', r.failures.join('; ')]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => (v === '' ? `\n${k}` : `${k.padEnd(w)}  ${v}`)).join('\n');
}

/** Nearest-rank p50/p95 of a sample, with its min and max. */
export function dist(xs: number[]): Distribution {
  if (!xs.length) return { n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, min: s[0], p50: quantile(s, 0.5), p95: quantile(s, 0.95), max: s[s.length - 1] };
}
