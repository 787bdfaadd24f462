// The chaos fault injector around the real process driver: `rate` is the share of calls that fail.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withInjectedFaults } from '../../hypervisors/fault-injection';
import { ProcessHypervisor } from '../../hypervisors/process/driver';

const processDriver = () =>
  new ProcessHypervisor({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'hourglass-fault-')), isolation: 'none' });

describe('withInjectedFaults', () => {
  it('fails the given share of calls, half before the work and half after it', async () => {
    const inner = processDriver();
    // Draws 0.05 (before), 0.15 (after), 0.5 (no fault), 0.95 (no fault) at rate 0.2.
    const draws = [0.05, 0.15, 0.5, 0.95];
    const hv = withInjectedFaults(inner, 0.2, () => draws.shift()!);

    await expect(hv.create({ id: 'f1', labels: {} })).rejects.toThrow('injected fault: create (before) f1');
    expect((await inner.list()).map((s) => s.id)).not.toContain('f1');

    await expect(hv.create({ id: 'f2', labels: {} })).rejects.toThrow('injected fault: create (after) f2');
    expect((await inner.list()).map((s) => s.id)).toContain('f2'); // the work was done

    await expect(hv.create({ id: 'f3', labels: {} })).resolves.toMatchObject({ id: 'f3' });
    await expect(hv.destroy('f2')).resolves.toEqual({ existed: true });
    await inner.destroy('f3');
  });

  it('fails about `rate` of all calls over many draws', async () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const hv = withInjectedFaults(processDriver(), 0.2, random);
    let failed = 0;
    for (let i = 0; i < 400; i++) await hv.destroy(`never-created-${i}`).catch(() => failed++);
    expect(failed / 400).toBeGreaterThan(0.14);
    expect(failed / 400).toBeLessThan(0.26);
  });
});
