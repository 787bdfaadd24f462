// Kernel-enforced limits of process sandboxes, for real: cgroup pids/memory/cpu, the /tmp tmpfs,
// the workspace image. Small limits keep every bomb quick.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeCgroup } from '../../hypervisors/process/cgroups';
import { isMounted, workspaceMountedIn } from '../../hypervisors/process/workspace';
import type { VmInfo } from '../../hypervisors/types';
import { processDrivers } from '../support/process-drivers';

const LIMITS = { memoryMiB: 96, pids: 48, cpus: 0.5, tmpMiB: 8, diskMiB: 32 };
const { driver, tempDir } = processDrivers('hourglass-limits', { limits: LIMITS });

/** A cgroup file of the sandbox, whichever hierarchy holds it. */
function cgroupFile(info: VmInfo, ...names: string[]): string {
  for (const dir of info.details.cgroups as string[]) {
    for (const name of names) {
      if (existsSync(path.join(dir, name))) return readFileSync(path.join(dir, name), 'utf8').trim();
    }
  }
  throw new Error(`no ${names.join(' or ')} in ${(info.details.cgroups as string[]).join(', ')}`);
}

const limitFiles = (info: VmInfo) => ({
  pids: cgroupFile(info, 'pids.max'),
  memory: cgroupFile(info, 'memory.max', 'memory.limit_in_bytes'),
  cpu: cgroupFile(info, 'cpu.max', 'cpu.cfs_quota_us'),
});

async function eventually(check: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeoutMs} ms: ${check}`);
  }
}

const loopDevicesBackedBy = (file: string) =>
  readdirSync('/sys/block')
    .filter((d) => d.startsWith('loop'))
    .filter((d) => {
      try {
        return readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8').trim().startsWith(file);
      } catch {
        return false;
      }
    });

describe('process sandbox limits', () => {
  it('applies the requested limits and reports them as enforced', async () => {
    const d = driver();
    const info = await d.create({ id: 'l1', labels: {}, limits: { memoryMiB: 128 } });
    expect(info.limits).toEqual({ ...LIMITS, memoryMiB: 128 });
    expect(info.isolation).toMatch(/; cgroup v[12]: memory 128 MiB, pids 48, cpu 0.5; /);
    const tail = '; /tmp 8 MiB; workspace 32 MiB; network: none (own namespace, loopback only)';
    expect(info.isolation.slice(-tail.length)).toBe(tail);
    expect(limitFiles(info)).toEqual({
      pids: '48',
      memory: String(128 * 1024 * 1024),
      cpu: expect.stringMatching(/^50000( 100000)?$/),
    });
    // All sandboxes together never take more than half of the host's pids.
    const pidsDir = (info.details.cgroups as string[]).find((dir) => existsSync(path.join(dir, 'pids.max')))!;
    const top = path.dirname(path.dirname(pidsDir));
    expect(Number(readFileSync(path.join(top, 'pids.max'), 'utf8'))).toBe(
      Math.floor(Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) / 2),
    );
    expect(d.summary()).toMatch(/all sandboxes together: at most \d+ processes \(half of pid_max\)/);
    await d.destroy('l1');
  });

  it('stops a fork bomb at pids.max: the host stays fine and the sandbox answers afterwards', async () => {
    const d = driver();
    const info = await d.create({ id: 'l2', labels: {} });
    const bomb = await d.exec('l2', { command: ['bash', '-c', 'f(){ f | f; }; f'], timeoutSeconds: 4 });
    expect(bomb.timedOut).toBe(true);
    expect(bomb.stderr).toMatch(/fork: retry: Resource temporarily unavailable/);
    expect(Number(cgroupFile(info, 'pids.peak', 'pids.current'))).toBeLessThanOrEqual(48);
    expect(cgroupFile(info, 'pids.events')).toMatch(/^max [1-9]/);
    expect(spawnSync('true').status).toBe(0); // the host can still fork
    expect((await d.exec('l2', { command: ['echo', 'alive'] })).stdout).toBe('alive\n');
    await d.destroy('l2');
  });

  it('OOM-kills a memory bomb at memoryMiB; the sandbox answers afterwards', async () => {
    const d = driver();
    await d.create({ id: 'l3', labels: {} });
    // tail keeps a "line" with no newline in memory until it ends: 512 MiB of it.
    const bomb = await d.exec('l3', { command: ['sh', '-c', 'head -c 512M /dev/zero | tail > /dev/null'] });
    expect(bomb.exitCode).toBe(137); // SIGKILL from the OOM killer
    expect((await d.exec('l3', { command: ['echo', 'alive'] })).stdout).toBe('alive\n');
    await d.destroy('l3');
  });

  it('fills /tmp only up to tmpMiB and the workspace only up to diskMiB (ENOSPC)', async () => {
    const d = driver();
    await d.create({ id: 'l4', labels: {} });
    const fill = await d.exec('l4', {
      command: [
        'sh',
        '-c',
        'head -c 64M /dev/zero > /tmp/fill; stat -c %s /tmp/fill; ' +
          'head -c 64M /dev/zero > /work/fill; stat -c %s /work/fill',
      ],
    });
    expect(fill.stderr).toBe("head: error writing 'standard output': No space left on device\n".repeat(2));
    const [tmpBytes, workBytes] = fill.stdout.trim().split('\n').map(Number);
    expect(tmpBytes).toBe(8 * 1024 * 1024);
    expect(workBytes).toBeGreaterThan(16 * 1024 * 1024); // ext4 keeps some of the 32 MiB for itself
    expect(workBytes).toBeLessThanOrEqual(32 * 1024 * 1024);
    await d.destroy('l4');
  });

  it('keeps the limits and the workspace across stop/start and a worker restart with other defaults', async () => {
    const stateDir = tempDir();
    const d = driver(stateDir);
    const info = await d.create({ id: 'l5', labels: {} });
    const before = limitFiles(info);
    await d.exec('l5', { command: ['sh', '-c', 'echo kept > /work/note'] });
    await d.stop('l5');
    expect((await d.describe('l5'))?.state).toBe('stopped');

    const restarted = driver(stateDir, { limits: { memoryMiB: 1024, pids: 1000, cpus: 2, tmpMiB: 100, diskMiB: 100 } });
    await restarted.start('l5');
    const after = (await restarted.describe('l5'))!;
    expect(after.limits).toEqual(LIMITS);
    expect(limitFiles(after)).toEqual(before);
    for (const dir of after.details.cgroups as string[]) {
      expect(readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')).toContain(`${after.details.holderPid}\n`);
    }
    const check = await restarted.exec('l5', {
      command: ['sh', '-c', 'cat /work/note; head -c 64M /dev/zero > /tmp/fill; stat -c %s /tmp/fill'],
    });
    expect(check.stdout).toBe(`kept\n${8 * 1024 * 1024}\n`);
    await restarted.destroy('l5');
  });

  it('rebuilds its cgroup and remounts its workspace on start after a host restart took them', async () => {
    const d = driver();
    const info = await d.create({ id: 'l6', labels: {} });
    await d.exec('l6', { command: ['sh', '-c', 'echo survived > /work/note'] });
    await d.stop('l6');
    // The workspace was mounted only in the sandbox's namespace: gone with it, loop device included.
    await eventually(() => loopDevicesBackedBy(info.details.workspaceImage as string).length === 0);
    // What a reboot leaves besides: no cgroup; the image and the record stay on disk.
    const record = JSON.parse(
      readFileSync(path.join(path.dirname(info.details.dir as string), 'sandbox.json'), 'utf8'),
    );
    await removeCgroup(record.cgroup, 'l6');
    await expect(d.exec('l6', { command: ['true'] })).rejects.toThrow(/is not running/);

    await d.start('l6');
    const again = (await d.describe('l6'))!;
    expect(limitFiles(again)).toEqual(limitFiles(info));
    expect((await d.exec('l6', { command: ['cat', '/work/note'] })).stdout).toBe('survived\n');
    await d.destroy('l6');
  });

  it(
    'destroy removes the cgroup, the mount, the loop device and the image; ' + 'a second destroy finds nothing',
    async () => {
      const d = driver();
      const info = await d.create({ id: 'l7', labels: {} });
      const image = info.details.workspaceImage as string;
      // Mounted inside the sandbox only: the host's mount table never holds sandbox workspaces.
      expect(await workspaceMountedIn(info.details.holderPid as number)).toBe(true);
      expect(await isMounted(info.details.dir as string)).toBe(false);
      expect(loopDevicesBackedBy(image)).toHaveLength(1);
      expect(await d.destroy('l7')).toEqual({ existed: true });
      for (const dir of info.details.cgroups as string[]) expect(existsSync(dir), dir).toBe(false);
      expect(existsSync(image)).toBe(false);
      expect(loopDevicesBackedBy(image)).toEqual([]);
      expect(await d.destroy('l7')).toEqual({ existed: false });
      await d.close();
      // close() removed this worker's (now empty) parent cgroup too.
      for (const dir of info.details.cgroups as string[]) expect(existsSync(path.dirname(dir))).toBe(false);
    },
  );

  it('completes a create that died half-way (record written, nothing else) and stays idempotent', async () => {
    const stateDir = tempDir();
    const d = driver(stateDir);
    const first = await d.create({ id: 'l8', labels: {} });
    // Undo everything but the record, as if the worker died right after writing it.
    await d.stop('l8');
    const record = JSON.parse(readFileSync(path.join(stateDir, 'process', 'l8', 'sandbox.json'), 'utf8'));
    await removeCgroup(record.cgroup, 'l8');
    const retried = await d.create({ id: 'l8', labels: {} });
    const again = await d.create({ id: 'l8', labels: {} });
    expect(again.details.holderPid).toBe(retried.details.holderPid);
    expect(limitFiles(retried)).toEqual(limitFiles(first));
    expect(await workspaceMountedIn(retried.details.holderPid as number)).toBe(true);
    expect(loopDevicesBackedBy(retried.details.workspaceImage as string)).toHaveLength(1);
    await d.destroy('l8');
  });

  it('states truthfully when limits cannot be enforced: no workspace quota with diskMiB 0', async () => {
    const d = driver(tempDir(), { limits: { ...LIMITS, diskMiB: 0 } });
    const info = await d.create({ id: 'l9', labels: {} });
    expect(info.limits).toEqual({ memoryMiB: 96, pids: 48, cpus: 0.5, tmpMiB: 8 });
    expect(info.isolation).toMatch(/; workspace: no quota; /);
    expect(info.details.workspaceImage).toBeUndefined();
    expect(await isMounted(info.details.dir as string)).toBe(false);
    await d.destroy('l9');
  });
});
