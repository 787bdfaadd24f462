// The process driver for real: bubblewrap namespaces, detached holders, cleanup.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadSpecError, NotFoundError } from '../../hypervisors/errors';
import { processStartTime } from '../../hypervisors/proc-identity';
import { ProcessHypervisor } from '../../hypervisors/process';

const driver = (stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-proc-'))) =>
  new ProcessHypervisor({ stateDir, useBubblewrap: true, network: false });

const pidsOf = (pattern: string) =>
  import('node:child_process').then(({ execFileSync }) => {
    try {
      return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    } catch {
      return [];
    }
  });

describe('process driver', () => {
  it('runs commands in their own pid namespace, and destroy kills every process it started', async () => {
    const d = driver();
    const info = await d.create({ id: 'p1', labels: { team: 'x' } });
    expect(info.isolation).toBe('bubblewrap (pid, mount, ipc, uts, net namespaces; uid 65534, no capabilities)');
    await d.waitReady('p1', 5000);
    const marker = `sleep 4242${Date.now() % 1000}`;
    await d.exec('p1', { command: ['sh', '-c', `${marker} > /dev/null 2>&1 &`] });
    const ps = await d.exec('p1', { command: ['sh', '-c', 'ls /proc | grep -c "^[0-9]"'] });
    expect(Number(ps.stdout.trim())).toBeLessThan(10); // only the sandbox's own processes are visible
    expect(await pidsOf(marker)).toHaveLength(1);

    expect(await d.destroy('p1')).toEqual({ existed: true });
    expect(await pidsOf(marker)).toHaveLength(0);
    expect(existsSync(info.details.dir as string)).toBe(false);
    expect(await d.destroy('p1')).toEqual({ existed: false });
    await expect(d.exec('p1', { command: ['true'] })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('runs commands as an unprivileged user without capabilities, with only the caller-given environment', async () => {
    const d = driver();
    await d.create({ id: 'p4', labels: {} });
    const who = await d.exec('p4', { command: ['sh', '-c', 'id -u; grep CapEff /proc/self/status; env | sort'], env: { GREETING: 'hi' } });
    expect(who.stdout).toBe('65534\nCapEff:\t0000000000000000\nGREETING=hi\nHOME=/work\nPATH=/usr/local/bin:/usr/bin:/bin\nPWD=/work\n');
    const escape = await d.exec('p4', { command: ['sh', '-c', 'cat /etc/shadow; touch /usr/pwned; mount -o remount,rw /usr'] });
    expect(escape.exitCode).not.toBe(0);
    expect(escape.stderr).toMatch(/Permission denied/);
    expect(existsSync('/usr/pwned')).toBe(false);
    expect((await d.exec('p4', { command: ['sh', '-c', 'echo ok > /work/f && echo ok > /tmp/f && cat /work/f /tmp/f'] })).stdout).toBe('ok\nok\n');
    await expect(d.exec('p4', { command: ['true'], env: { 'BAD NAME': 'x' } })).rejects.toBeInstanceOf(BadSpecError);
    await d.destroy('p4');
  });

  it('never leaves a holder behind when the worker died before recording it', async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-proc-'));
    const d = driver(stateDir);
    const first = await d.create({ id: 'p5', labels: {} });
    // Simulate a worker killed between spawning bwrap and writing its pid: the record has no holder.
    const record = path.join(stateDir, 'process', 'p5', 'sandbox.json');
    const forget = () => writeFileSync(record, JSON.stringify({ ...JSON.parse(readFileSync(record, 'utf8')), holder: undefined }));
    forget();
    const retried = await d.create({ id: 'p5', labels: {} }); // the activity's retry
    expect(retried.details.holderPid).not.toBe(first.details.holderPid);
    expect(await processStartTime(first.details.holderPid as number)).toBeNull(); // the stray was killed
    forget();
    await d.destroy('p5');
    expect(await processStartTime(retried.details.holderPid as number)).toBeNull();
  });

  it('sandboxes outlive the driver instance (a worker restart) and are found again by list()', async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-proc-'));
    const first = driver(stateDir);
    const info = await first.create({ id: 'p2', labels: {} });
    const second = driver(stateDir);
    const listed = await second.list();
    expect(listed.map((v) => [v.id, v.state])).toEqual([['p2', 'running']]);
    expect((await second.exec('p2', { command: ['echo', 'still here'] })).stdout).toBe('still here\n');
    await second.destroy('p2');
    expect(await processStartTime(info.details.holderPid as number)).toBeNull();
  });

  it('never lists directories that are not its own sandboxes, and rejects unsafe ids and unknown templates', async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-proc-'));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(stateDir, 'process', 'someone-elses-dir'), { recursive: true });
    const d = driver(stateDir);
    expect(await d.list()).toEqual([]);
    await expect(d.create({ id: '../etc', labels: {} })).rejects.toBeInstanceOf(BadSpecError);
    await expect(d.create({ id: 'ok', template: 'gpu', labels: {} })).rejects.toThrow("unknown template 'gpu' for driver process; available: default");
  });

  it('kills a command at its timeout, with the processes it started', async () => {
    const d = driver();
    await d.create({ id: 'p3', labels: {} });
    const r = await d.exec('p3', { command: ['sh', '-c', 'echo before; sleep 30'], timeoutSeconds: 1 });
    expect(r).toMatchObject({ exitCode: 124, timedOut: true, stdout: 'before\n' });
    expect(r.durationMs).toBeLessThan(3000);
    await d.destroy('p3');
  });
});
