// Nothing leaks, under chaos (a reduced `npm run chaos`): ~36 short sandboxes (renewals by update
// and by signal, destroys, sessions deleted and lapsed) while the worker and the API (separate
// processes) are SIGKILLed and restarted, Temporal is restarted on its DB file, and the worker's
// driver fails 20% of creates/destroys. Uses its own Temporal server and database (the reaper
// reads every registry row, so the suite's shared database must not be used).
import { describe, expect, it } from 'vitest';
import { formatReport, problemsOf } from '../bench/chaos/report';
import { runChaos } from '../bench/chaos/run';

describe('chaos (reduced)', () => {
  it('every sandbox is destroyed exactly once, on time outside outages; the foreign VM is untouched', async () => {
    const report = await runChaos({
      sandboxes: 36,
      creationWindowSeconds: 45,
      chaosEverySeconds: [12, 18],
      pauseSeconds: [0.5, 1.5],
      temporalRestarts: 1,
      log: () => {},
    });
    console.log(`chaos (reduced):\n${formatReport(report)}`);

    expect(report.chaos.workerKills + report.chaos.apiKills).toBeGreaterThanOrEqual(1);
    expect(report.chaos.temporalRestarts).toBe(1);
    expect(report.leaks.liveVms).toBe(0);
    expect(report.leaks.leftoverDirs).toEqual([]);
    expect(report.leaks.liveHolders).toBe(0);
    expect(report.leaks.strayProcesses).toEqual([]);
    expect(report.leaks.rowsNotDestroyed).toEqual([]);
    expect(report.leaks.openSandboxWorkflows).toBe(0);
    expect(report.leaks.foreignTouched).toEqual([]);
    expect(report.exactlyOnce.sandboxesWithoutDestroyedEvent).toEqual([]);
    expect(report.exactlyOnce.sandboxesWithSeveralDestroyedEvents).toEqual([]);
    expect(report.exactlyOnce.dirsRecreated).toEqual([]);
    expect(report.timing.convergedSecondsAfterLastLease).not.toBeNull();
    expect(report.timing.calmOverBound).toEqual([]);
    expect(report.safetyNet).toEqual([]);
    expect(problemsOf(report)).toEqual([]);
  }, 240_000);
});
