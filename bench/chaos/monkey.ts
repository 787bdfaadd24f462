// The chaos monkey: during the creation window (+5 s), every few seconds either restarts Temporal
// (at the planned moments) or SIGKILLs the worker and/or the API, and starts them again after a pause.
import type { Dice } from '../lib/prng';
import { sleep } from './client';
import { temporalRestartTimes, victimsFor, type ChaosOptions } from './plan';
import type { ChildService, Outage, TemporalServer } from './services';

export interface MonkeyTargets {
  temporal: TemporalServer;
  worker: ChildService;
  api: ChildService;
}

/** Runs until the chaos window is over; returns Temporal's outages (the services count their own). */
export async function runMonkey(o: ChaosOptions, dice: Dice, startedMs: number, t: MonkeyTargets): Promise<Outage[]> {
  const log = o.log;
  const temporalOutages: Outage[] = [];
  const chaosEnd = startedMs + (o.creationWindowSeconds + 5) * 1000;
  const restartAt = temporalRestartTimes(o, startedMs);
  const nap = (ms: number) => sleep(Math.max(0, Math.min(ms, chaosEnd - Date.now())));
  await nap(dice.uniform(o.chaosEverySeconds) * 1000 * 0.6);
  while (Date.now() < chaosEnd) {
    const pause = dice.uniform(o.pauseSeconds) * 1000;
    if (restartAt.length && Date.now() >= restartAt[0]!) {
      restartAt.shift();
      log(`chaos: restarting Temporal (down for ≥ ${(pause / 1000).toFixed(1)} s)`);
      const outage: Outage = { service: 'temporal', start: Date.now(), cause: 'restart' };
      temporalOutages.push(outage);
      await t.temporal.stop();
      await sleep(pause);
      await t.temporal.start();
      outage.end = Date.now();
      log(`chaos: Temporal back after ${((outage.end - outage.start) / 1000).toFixed(1)} s`);
    } else {
      const victims = victimsFor(dice.next()).map((name) => t[name]);
      const names = victims.map((v) => `${v.name} (pgid ${v.pid})`).join(' + ');
      log(`chaos: SIGKILL ${names}, down ${(pause / 1000).toFixed(1)} s`);
      await Promise.all(victims.map((v) => v.kill()));
      await sleep(pause);
      const restarted = Date.now();
      victims.forEach((v) => v.start());
      await Promise.all(victims.map((v) => v.waitReady()));
      const after = ((Date.now() - restarted) / 1000).toFixed(1);
      log(`chaos: ${victims.map((v) => v.name).join(' + ')} ready again ${after} s after restart`);
    }
    await nap(dice.uniform(o.chaosEverySeconds) * 1000);
  }
  return temporalOutages;
}
