// A retried create — an attempt the server timed out still running beside its retry, possibly in
// another worker on the same host — must leave one namespace per sandbox, the one recorded.
import { describe, expect, it } from 'vitest';
import { findProcesses } from '../../hypervisors/common/process-table';
import { gone, processDrivers } from '../support/process-drivers';

const SMALL = { memoryMiB: 128, pids: 64, tmpMiB: 8, diskMiB: 0 };
const { driver, tempDir } = processDrivers('hourglass-race', { limits: SMALL });

/** bwrap processes whose command line binds this sandbox's work dir: holders, outer and inner. */
const bwrapsOf = (workDir: string) =>
  findProcesses((argv) => Boolean(argv[0]?.endsWith('bwrap')) && argv.includes(workDir));

describe('process driver: overlapping create attempts', () => {
  it(
    'two workers on one state dir creating the same sandboxes at once ' + 'make one holder each, the recorded one',
    async () => {
      const stateDir = tempDir();
      const a = driver(stateDir);
      const b = driver(stateDir); // a second worker process: its own in-process mutex, the same files
      const ids = ['race-0', 'race-1', 'race-2', 'race-3'];
      const results = await Promise.all(
        ids.flatMap((id) => [a.create({ id, labels: {} }), b.create({ id, labels: {} }), a.create({ id, labels: {} })]),
      );
      for (const id of ids) {
        const made = results.filter((r) => r.id === id);
        // Every attempt reports the same holder: later ones found the first one's and kept it.
        expect(new Set(made.map((r) => r.details.holderPid)).size).toBe(1);
        const holderPid = made[0]!.details.holderPid as number;
        expect((await a.describe(id))!.details.holderPid).toBe(holderPid);
        const bwraps = await bwrapsOf(made[0]!.details.dir as string);
        // The outer bwrap (the recorded holder's parent) and pid 1 of the namespace: nothing else.
        expect(
          bwraps
            .filter((p) => !p.exited)
            .map((p) => p.pid)
            .sort(),
        ).toEqual(expect.arrayContaining([holderPid]));
        expect(bwraps.filter((p) => !p.exited).length).toBeLessThanOrEqual(2);
        await b.waitReady(id, 5000);
        expect((await a.exec(id, { command: ['true'] })).exitCode).toBe(0);
      }
      // A destroy racing a create from the other worker: whichever wins, nothing is left running.
      const [created] = await Promise.allSettled([a.create({ id: 'race-x', labels: {} }), b.destroy('race-x')]);
      await b.destroy('race-x');
      if (created.status === 'fulfilled') expect(await gone(created.value.details.holderPid)).toBe(true);
      for (const id of ids) {
        const dir = (await a.describe(id))!.details.dir as string;
        await b.destroy(id);
        expect((await bwrapsOf(dir)).filter((p) => !p.exited)).toEqual([]);
      }
    },
  );

  it('an attempt cancelled before it takes the lock changes nothing', async () => {
    const d = driver();
    const aborted = new AbortController();
    aborted.abort(new Error('attempt timed out'));
    await expect(d.create({ id: 'race-c', labels: {} }, { signal: aborted.signal })).rejects.toThrow(
      'attempt timed out',
    );
    expect(await d.describe('race-c')).toBeNull();
  });
});
