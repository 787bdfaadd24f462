// The contract every driver keeps (hypervisors/guest/contract.ts and hypervisors/types.ts), as one
// suite each driver runs from its own *-contract.test.ts with its own setup. The tests share one
// sandbox and run in order: a VM boot costs seconds.
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusyError, NotFoundError } from '../../hypervisors/errors';
import { EXEC_OUTPUT_CAP_BYTES, GUEST_PATH, notFoundMessage, truncationMarker } from '../../hypervisors/guest/contract';
import type { Hypervisor, SandboxSpec, VmInfo } from '../../hypervisors/types';

export interface ContractOptions {
  /** Made once for the suite; closed after it. */
  driver: () => Hypervisor | Promise<Hypervisor>;
  /** A sandbox id no other run uses. */
  newId: () => string;
  /** The HOME its commands get (contract.ts), from what create returned. */
  home: (info: VmInfo) => string;
  readyMs: number;
  /** Added to the spec (limits that keep the sandbox small). */
  spec?: Partial<SandboxSpec>;
  /** Runs after the suite, once the driver is closed. */
  cleanup?: () => Promise<void>;
}

export function driverContract(name: string, opts: ContractOptions): void {
  describe(`${name} driver: the contract`, () => {
    let hv: Hypervisor;
    let info: VmInfo;
    const id = opts.newId();
    const run = (command: string[], extra: { env?: Record<string, string>; timeoutSeconds?: number } = {}) =>
      hv.exec(id, { command, ...extra });

    beforeAll(async () => {
      hv = await opts.driver();
    });
    afterAll(async () => {
      await hv?.destroy(id).catch(() => undefined);
      await hv?.close?.();
      await opts.cleanup?.();
    });

    it('creates a sandbox (again: the same one) that list and describe report; it answers', async () => {
      info = await hv.create({ id, labels: { suite: 'contract' }, ...opts.spec });
      expect(info).toMatchObject({ id, driver: hv.name, state: 'running' });
      await hv.waitReady(id, opts.readyMs);
      expect((await hv.create({ id, labels: { suite: 'contract' }, ...opts.spec })).id).toBe(id);
      const listed = (await hv.list()).filter((vm) => vm.id === id);
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ driver: hv.name, state: 'running' });
      expect(await hv.describe(id)).toMatchObject({ id, driver: hv.name, state: 'running' });
    });

    it('runs a command: stdout, stderr and exit code apart', async () => {
      const r = await run(['sh', '-c', 'echo to-out; echo to-err >&2; exit 7']);
      expect(r).toMatchObject({ exitCode: 7, stdout: 'to-out\n', stderr: 'to-err\n', timedOut: false });
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    });

    it("gives a command GUEST_PATH, HOME and the caller's variables, nothing else", async () => {
      const value = `a b "c' $HOME \${PATH}`;
      const script = 'printf "%s|%s|%s\\n" "$GREETING" "$PATH" "$HOME"';
      const r = await run(['sh', '-c', script], { env: { GREETING: value } });
      expect(r.stdout).toBe(`${value}|${GUEST_PATH}|${opts.home(info)}\n`);
      // env(1) itself: only what the shell before it adds (PWD; busybox ash also SHLVL).
      const env = await run(['env'], { env: { GREETING: 'hi' } });
      const names = env.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('=')[0]);
      expect(names.filter((n) => n !== 'PWD' && n !== 'SHLVL').sort()).toEqual(['GREETING', 'HOME', 'PATH']);
    });

    it('answers a missing program with 127 and a stderr line naming it', async () => {
      const r = await run(['no-such-program-hg', 'arg']);
      const stderr = notFoundMessage('no-such-program-hg');
      expect(r).toMatchObject({ exitCode: 127, stdout: '', stderr, timedOut: false });
    });

    it('reports a process killed by a signal as 128 + N', async () => {
      expect((await run(['sh', '-c', 'kill -9 $$'])).exitCode).toBe(137);
    });

    it('kills the whole process tree at the timeout and keeps what it printed', async () => {
      const sleep = `sleep ${randomInt(100_000, 999_999)}`; // found again by its argument
      const r = await run(['sh', '-c', `echo started; ${sleep} & ${sleep}; echo finished`], { timeoutSeconds: 2 });
      expect(r).toMatchObject({ exitCode: 124, timedOut: true, stdout: 'started\n' });
      expect(r.durationMs).toBeLessThan(15_000);
      const sleeping = async () => {
        const cmdlines = 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "';
        const ps = await run(['sh', '-c', `${cmdlines} | grep -o "sleep [0-9]*"`]);
        return ps.stdout.split('\n').filter((line) => line === sleep);
      };
      await expect.poll(sleeping, { timeout: 5_000 }).toEqual([]);
    });

    it('cuts each stream at EXEC_OUTPUT_CAP_BYTES with the truncation marker', async () => {
      const big = 'head -c 300000 /dev/zero | tr "\\0" a; head -c 300000 /dev/zero | tr "\\0" b >&2';
      const r = await run(['sh', '-c', big]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('a'.repeat(EXEC_OUTPUT_CAP_BYTES) + truncationMarker(300_000 - EXEC_OUTPUT_CAP_BYTES));
      expect(r.stderr).toBe('b'.repeat(EXEC_OUTPUT_CAP_BYTES) + truncationMarker(300_000 - EXEC_OUTPUT_CAP_BYTES));
      expect((await run(['sh', '-c', 'head -c 1000 /dev/zero | tr "\\0" a'])).stdout).toBe('a'.repeat(1000));
    });

    it('stops (no commands then) and starts again', async () => {
      await hv.stop(id);
      expect((await hv.describe(id))?.state).toBe('stopped');
      await expect(run(['true'])).rejects.toBeInstanceOf(BusyError);
      await hv.start(id);
      await hv.waitReady(id, opts.readyMs);
      expect((await hv.describe(id))?.state).toBe('running');
      expect((await run(['echo', 'back'])).stdout).toBe('back\n');
    });

    it('destroys once; then nothing is left to list, describe, run in or destroy', async () => {
      expect(await hv.destroy(id)).toEqual({ existed: true });
      expect(await hv.destroy(id)).toEqual({ existed: false });
      expect(await hv.describe(id)).toBeNull();
      expect((await hv.list()).map((vm) => vm.id)).not.toContain(id);
      await expect(run(['true'])).rejects.toBeInstanceOf(NotFoundError);
    });

    it('destroys a sandbox that never existed: nothing to do', async () => {
      expect(await hv.destroy(opts.newId())).toEqual({ existed: false });
    });
  });
}
