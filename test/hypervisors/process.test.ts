// The process driver for real: bubblewrap namespaces, seccomp, detached holders, recorded isolation, cleanup.
// What every driver guarantees (exec results, timeouts, destroy) is in process-contract.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { driverSettings } from '../../config/drivers';
import { BadSpecError, IsolationUnavailableError } from '../../hypervisors/errors';
import { GUEST_PATH } from '../../hypervisors/guest/contract';
import { createProcessHypervisor } from '../../hypervisors/process/driver';
import { gone, processDrivers } from '../support/process-drivers';

/** Small limits keep creates fast (the workspace template is made once per size and state dir). */
const SMALL = { memoryMiB: 256, pids: 128, tmpMiB: 16, diskMiB: 64 };
const { driver, tempDir } = processDrivers('hourglass-proc', { limits: SMALL });

const pidsOf = (pattern: string) => {
  const r = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
  return r.stdout.trim().split('\n').filter(Boolean);
};

describe('process driver', () => {
  it('runs commands in their own pid namespace, and destroy kills every process it started', async () => {
    const d = driver();
    const info = await d.create({ id: 'p1', labels: { team: 'x' } });
    expect(info.isolation).toMatch(
      /^bubblewrap \(pid, mount, ipc, uts, net, cgroup namespaces; uid 65534, no capabilities, no user namespaces\); /,
    );
    await d.waitReady('p1', 5000);
    const marker = `sleep 4242${Date.now() % 1000}`;
    await d.exec('p1', { command: ['sh', '-c', `${marker} > /dev/null 2>&1 &`] });
    const ps = await d.exec('p1', { command: ['sh', '-c', 'ls /proc | grep -c "^[0-9]"'] });
    expect(Number(ps.stdout.trim())).toBeLessThan(10); // only the sandbox's own processes are visible
    expect(pidsOf(marker)).toHaveLength(1);

    expect(await d.destroy('p1')).toEqual({ existed: true });
    expect(pidsOf(marker)).toHaveLength(0);
    expect(existsSync(info.details.dir as string)).toBe(false);
  });

  it('runs commands as an unprivileged user without capabilities, with only the caller-given environment', async () => {
    const d = driver();
    await d.create({ id: 'p4', labels: {} });
    const who = await d.exec('p4', {
      command: ['sh', '-c', 'id -u; grep -E "CapEff|NoNewPrivs|Seccomp:" /proc/self/status; env | sort'],
      env: { GREETING: 'hi' },
    });
    expect(who.stdout).toBe(
      '65534\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n' +
        `GREETING=hi\nHOME=/work\nPATH=${GUEST_PATH}\nPWD=/work\n`,
    );
    const escape = await d.exec('p4', {
      command: ['sh', '-c', 'cat /etc/shadow; touch /usr/pwned; mount -o remount,rw /usr'],
    });
    expect(escape.exitCode).not.toBe(0);
    expect(escape.stderr).toMatch(/Permission denied/);
    expect(existsSync('/usr/pwned')).toBe(false);
    expect(
      (await d.exec('p4', { command: ['sh', '-c', 'echo ok > /work/f && echo ok > /tmp/f && cat /work/f /tmp/f'] }))
        .stdout,
    ).toBe('ok\nok\n');
    await expect(d.exec('p4', { command: ['true'], env: { 'BAD NAME': 'x' } })).rejects.toBeInstanceOf(BadSpecError);
    await d.destroy('p4');
  });

  it('keeps env values out of every command line on the host, and hands them over byte for byte', async () => {
    const d = driver();
    await d.create({ id: 'p5', labels: {} });
    const secret = `sk-${Date.now()}-x`;
    const tricky = {
      SECRET: secret,
      SPACES: 'a b "c\' $HOME ${PATH}',
      LINES: 'one\ntwo',
      EMPTY: '',
      LD_PRELOAD: '/nonexistent.so',
    };
    const running = d.exec('p5', { command: ['sh', '-c', 'sleep 1; env'], env: tricky });
    await new Promise((r) => setTimeout(r, 500));
    const cmdlines = readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      });
    expect(cmdlines.filter((c) => c.includes(secret))).toEqual([]);
    const out = await running;
    for (const [k, v] of Object.entries(tricky)) expect(out.stdout, k).toContain(`${k}=${v}\n`);
    expect(out.stdout).not.toMatch(/HOURGLASS_ENV_/);
    await d.destroy('p5');
  });

  it('refuses nested user namespaces, while fork, pipes and threads work', async () => {
    const d = driver();
    await d.create({ id: 'p6', labels: {} });
    for (const cmd of [
      ['unshare', '-U', 'true'],
      ['unshare', '-r', 'true'],
      ['unshare', '-U', '-r', '-m', 'true'],
    ]) {
      const r = await d.exec('p6', { command: cmd });
      expect(r.exitCode, cmd.join(' ')).not.toBe(0);
      expect(r.stderr, cmd.join(' ')).toMatch(/unshare failed: Operation not permitted/);
    }
    const ordinary = await d.exec('p6', {
      command: [
        'sh',
        '-c',
        'seq 3 | sort -r | tr "\\n" " "; (echo sub) & wait; seq 100000 | sort --parallel=4 -S 1M | wc -l',
      ],
    });
    expect(ordinary.stdout).toBe('3 2 1 sub\n100000\n');
    // glibc's pthread_create tries clone3 first (refused with ENOSYS) and falls back to clone.
    if (process.execPath.startsWith('/usr/')) {
      const threads = await d.exec('p6', {
        command: [
          process.execPath,
          '-e',
          "new (require('worker_threads').Worker)('require(\"worker_threads\").parentPort.postMessage(6*7)', " +
            "{ eval: true }).on('message', console.log)",
        ],
      });
      expect(threads.stdout).toBe('42\n');
    }
    await d.destroy('p6');
  });

  it('lets only descriptors 0-2 reach a command, even ones the worker inherited', async () => {
    const stateDir = tempDir();
    const d = driver(stateDir);
    await d.create({ id: 'p7', labels: {} });
    // A worker started as `exec 200>>file; npm start`: a child Node process with an inheritable fd.
    const leaked = path.join(stateDir, 'leaked');
    const script = path.join(stateDir, 'exec.mts');
    writeFileSync(
      script,
      `import { ProcessHypervisor } from ${JSON.stringify(path.resolve('hypervisors/process/driver.ts'))};\n` +
        `const d = new ProcessHypervisor({ stateDir: ${JSON.stringify(stateDir)} });\n` +
        // No pipe while listing: bash holds a pipe's ends for a moment while it starts the pipeline.
        `const r = await d.exec('p7', { command: ['bash', '-c', 'ls /proc/$$/fd > /tmp/fds; tr "\\\\n" " " < ` +
        `/tmp/fds; echo x >&200'] });\n` +
        'process.stdout.write(JSON.stringify(r));\n',
    );
    const child = spawnSync(
      'bash',
      ['-c', `exec 200>>${leaked}; exec "$0" --import tsx "$1"`, process.execPath, script],
      { encoding: 'utf8' },
    );
    expect(child.status, child.stderr).toBe(0);
    const r = JSON.parse(child.stdout);
    expect(r.stdout).toBe('0 1 2 ');
    expect(r.stderr).toMatch(/Bad file descriptor/);
    expect(readFileSync(leaked, 'utf8')).toBe('');
    await d.destroy('p7');
  });

  it('never leaves a holder behind when the worker died before recording it', async () => {
    const stateDir = tempDir();
    const d = driver(stateDir);
    const first = await d.create({ id: 'p5', labels: {} });
    // Simulate a worker killed between spawning bwrap and writing its pid: the record has no holder.
    const record = path.join(stateDir, 'process', 'p5', 'sandbox.json');
    const forget = () =>
      writeFileSync(record, JSON.stringify({ ...JSON.parse(readFileSync(record, 'utf8')), holder: undefined }));
    forget();
    const retried = await d.create({ id: 'p5', labels: {} }); // the activity's retry
    expect(retried.details.holderPid).not.toBe(first.details.holderPid);
    expect(await gone(first.details.holderPid)).toBe(true); // the stray was killed
    forget();
    await d.destroy('p5');
    expect(await gone(retried.details.holderPid)).toBe(true);
  });

  it('sandboxes outlive the driver instance (a worker restart) and are found again by list()', async () => {
    const stateDir = tempDir();
    const first = driver(stateDir);
    const info = await first.create({ id: 'p2', labels: {} });
    const second = driver(stateDir);
    const listed = await second.list();
    expect(listed.map((v) => [v.id, v.state])).toEqual([['p2', 'running']]);
    expect((await second.exec('p2', { command: ['echo', 'still here'] })).stdout).toBe('still here\n');
    await second.destroy('p2');
    expect(await gone(info.details.holderPid)).toBe(true);
  });

  it('lists only its own sandboxes, and rejects unsafe ids, unknown templates and nonsense limits', async () => {
    const stateDir = tempDir();
    mkdirSync(path.join(stateDir, 'process', 'someone-elses-dir'), { recursive: true });
    const d = driver(stateDir);
    expect(await d.list()).toEqual([]);
    await expect(d.create({ id: '../etc', labels: {} })).rejects.toBeInstanceOf(BadSpecError);
    await expect(d.create({ id: 'ok', template: 'gpu', labels: {} })).rejects.toThrow(
      "unknown template 'gpu' for driver process; available: default",
    );
    await expect(
      d.create({ id: 'ok', labels: {}, limits: { memoryMiB: 0, cpus: -1, tmpMiB: 0.5, diskMiB: 8 } }),
    ).rejects.toThrow(
      'sandbox ok: limits.cpus must be a number from 0.01 to 1024 (got -1); limits.memoryMiB must be an ' +
        'integer from 32 to 4194304 (got 0); ' +
        'limits.tmpMiB must be an integer from 1 to 1048576 (got 0.5); limits.diskMiB must be an integer from ' +
        '16 to 16777216 (or 0: no quota) (got 8)',
    );
    expect(await d.list()).toEqual([]);
  });
});

describe('process driver isolation modes', () => {
  it('fails closed without bubblewrap: a permanent error saying how to fix it, nothing made', async () => {
    const stateDir = tempDir();
    const d = driver(stateDir, { searchPath: mkdtempSync(path.join(os.tmpdir(), 'empty-path-')) });
    expect(d.summary()).toMatch(/isolation bubblewrap REQUIRED but bwrap is not installed: EVERY CREATE WILL FAIL/);
    const err = await d.create({ id: 'nb', labels: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(IsolationUnavailableError);
    expect(err).toMatchObject({ code: 'isolation_unavailable', permanent: true });
    expect(err.message).toBe(
      'sandbox nb: bubblewrap (bwrap) is not installed, and process sandboxes require it: install it (Debian: ' +
        'apt-get install bubblewrap), ' +
        'or opt out of isolation explicitly with HOURGLASS_PROCESS_ISOLATION=none',
    );
    expect(await d.list()).toEqual([]);
    expect(existsSync(path.join(stateDir, 'process', 'nb'))).toBe(false);
  });

  it('takes its settings as config/drivers.ts reads them from the environment, and says what it got', () => {
    const env = { HOURGLASS_PROCESS_ISOLATION: 'none', HOURGLASS_PROCESS_CPUS: '0.5', HOURGLASS_PROCESS_DISK_MIB: '0' };
    const none = createProcessHypervisor(driverSettings('process', env), tempDir());
    expect(none.summary?.()).toMatch(/^process: isolation NONE \(HOURGLASS_PROCESS_ISOLATION=none\)/);
    expect(none.summary?.()).toContain(
      'default limits: memory 512 MiB, pids 256, cpu 0.5, /tmp 64 MiB, workspace no quota',
    );
  });

  it('runs isolation-none commands as uid 65534 without capabilities, under cgroup limits', async () => {
    const d = driver(tempDir(), { isolation: 'none', limits: { ...SMALL, pids: 32 } });
    const info = await d.create({ id: 'n1', labels: {} });
    expect(info.isolation).toMatch(
      /^none \(no namespaces: commands run on the host as uid 65534 with no capabilities, /,
    );
    expect(info.isolation).toMatch(/\); cgroup v[12]: memory 256 MiB, pids 32, cpu 1; /);
    const tail = "; /tmp: the host's, not limited; workspace 64 MiB; network: the host's (not isolated)";
    expect(info.isolation.slice(-tail.length)).toBe(tail);
    expect(info.limits).toEqual({ memoryMiB: 256, pids: 32, cpus: 1, diskMiB: 64 });
    const who = await d.exec('n1', { command: ['sh', '-c', 'id -u; grep CapEff /proc/self/status; pwd'] });
    expect(who.stdout).toBe(`65534\nCapEff:\t0000000000000000\n${info.details.dir}\n`);
    const bomb = await d.exec('n1', { command: ['bash', '-c', 'f(){ f | f; }; f'], timeoutSeconds: 3 });
    expect(bomb.timedOut).toBe(true);
    expect(bomb.stderr).toMatch(/fork: retry: Resource temporarily unavailable/);
    // Stop ends what it left running (found through its cgroup), start serves it again.
    const marker = `sleep 4343${Date.now() % 1000}`;
    await d.exec('n1', { command: ['sh', '-c', `${marker} > /dev/null 2>&1 &`] });
    expect(pidsOf(marker)).toHaveLength(1);
    await d.stop('n1');
    expect(pidsOf(marker)).toHaveLength(0);
    expect((await d.describe('n1'))?.state).toBe('stopped');
    await expect(d.exec('n1', { command: ['true'] })).rejects.toThrow('sandbox n1 is stopped; start it first');
    await d.start('n1');
    expect((await d.exec('n1', { command: ['echo', 'back'] })).stdout).toBe('back\n');
    await d.destroy('n1');
  });

  it('keeps a sandbox’s isolation across restarts; refuses an unisolated one where isolation is required', async () => {
    const stateDir = tempDir();
    const isolated = driver(stateDir);
    await isolated.create({ id: 'kept', labels: {} });
    const unisolated = driver(stateDir, { isolation: 'none' });
    await unisolated.create({ id: 'bare', labels: {} });

    // A worker now set to none still runs the bubblewrap sandbox inside its namespaces.
    const inside = await unisolated.exec('kept', {
      command: ['sh', '-c', 'hostname; id -u; ls /proc | grep -c "^[0-9]"'],
    });
    expect(inside.stdout).toMatch(/^sandbox\n65534\n\d\n$/);
    const kept = (await unisolated.describe('kept'))?.isolation ?? '';
    expect(kept).toMatch(/^bubblewrap /);
    const tail =
      '[created with bubblewrap, which it keeps although this worker is set to HOURGLASS_PROCESS_ISOLATION=none]';
    expect(kept.slice(-tail.length)).toBe(tail);
    await unisolated.stop('kept');
    await unisolated.start('kept');
    expect((await unisolated.exec('kept', { command: ['hostname'] })).stdout).toBe('sandbox\n');

    // A worker that requires bubblewrap refuses the sandbox made without it, but still destroys it.
    const strict = driver(stateDir);
    const refusal =
      'sandbox bare was created without isolation (HOURGLASS_PROCESS_ISOLATION=none) and this worker requires ' +
      'bubblewrap: it will not start it ' +
      'or run commands in it. Destroy it, or serve it from a worker with HOURGLASS_PROCESS_ISOLATION=none';
    await expect(strict.exec('bare', { command: ['true'] })).rejects.toThrow(refusal);
    await expect(strict.exec('bare', { command: ['true'] })).rejects.toMatchObject({
      code: 'isolation_unavailable',
      permanent: true,
    });
    await expect(strict.create({ id: 'bare', labels: {} })).rejects.toThrow(refusal);
    await strict.stop('bare');
    await expect(strict.start('bare')).rejects.toThrow(refusal);
    const bare = (await strict.describe('bare'))?.isolation ?? '';
    expect(bare).toMatch(/^none /);
    expect(bare).toContain(
      '[created with HOURGLASS_PROCESS_ISOLATION=none; this worker requires bubblewrap ' +
        'and refuses to start it or run commands in it]',
    );
    expect(await strict.destroy('bare')).toEqual({ existed: true });
    await strict.destroy('kept');
  });

  it('finds bwrap and slirp4netns on the search path it is given', async () => {
    const bin = mkdtempSync(path.join(os.tmpdir(), 'only-bwrap-'));
    symlinkSync('/usr/bin/bwrap', path.join(bin, 'bwrap'));
    const d = driver(tempDir(), { searchPath: bin, network: true });
    expect(d.summary()).toMatch(/network ON but slirp4netns is not installed: EVERY CREATE WILL FAIL/);
    await expect(d.create({ id: 'ns', labels: {} })).rejects.toThrow(
      'sandbox ns: network is on (HOURGLASS_PROCESS_NETWORK=1) but slirp4netns is not installed, and a sandbox ' +
        "never shares the host's network: " +
        'install it (Debian: apt-get install slirp4netns) or set HOURGLASS_PROCESS_NETWORK=0',
    );
    // With slirp4netns but no iptables-restore, there would be no egress filter: refused too.
    symlinkSync('/usr/bin/slirp4netns', path.join(bin, 'slirp4netns'));
    const unfiltered = driver(tempDir(), { searchPath: bin, network: true });
    expect(unfiltered.summary()).toMatch(/network ON but iptables-restore is not installed: EVERY CREATE WILL FAIL/);
    await expect(unfiltered.create({ id: 'nf', labels: {} })).rejects.toThrow(
      /its egress filter .* needs iptables-restore/,
    );
  });
});
