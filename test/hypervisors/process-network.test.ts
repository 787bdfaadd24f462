// Network of process sandboxes, for real: without network only loopback; with it, slirp4netns gives
// outbound access through the host's sockets, filtered to the internet: the host's loopback (where
// Hourglass binds its API, Temporal and PostgreSQL), its own addresses and private ranges stay out
// of reach unless allowed by name.
import { existsSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessHypervisor } from '../../hypervisors/process/driver';
import { gone, processDrivers } from '../support/process-drivers';

const { driver } = processDrivers('hourglass-net', { network: true, limits: { diskMiB: 0 } });

// A service on all of the host's addresses, like one a careless operator exposes.
let server: net.Server;
let port: number;
const hostIp = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

beforeAll(async () => {
  server = net.createServer((s) => s.end('hello from the host\n')).listen(0, '0.0.0.0');
  await new Promise((r) => server.once('listening', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise((r) => server.close(r)));

/** Connects from inside the sandbox with bash's /dev/tcp; prints what the server said. */
const connect = (d: ProcessHypervisor, id: string, host: string) =>
  d.exec(id, { command: ['bash', '-c', `exec 3<>/dev/tcp/${host}/${port} && cat <&3`], timeoutSeconds: 10 });

describe('process sandbox network', () => {
  it('has only loopback without network: nothing outside is reachable', async () => {
    const d = driver(undefined, { network: false });
    const info = await d.create({ id: 'off', labels: {} });
    expect(info.isolation).toMatch(/; network: none \(own namespace, loopback only\)$/);
    expect(info.details.slirpPid).toBeUndefined();
    const ifaces = await d.exec('off', { command: ['sh', '-c', "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"] });
    expect(ifaces.stdout).toBe('lo\n');
    expect(hostIp, 'this test needs a non-loopback IPv4 address on the host').toBeDefined();
    const out = await connect(d, 'off', hostIp!);
    expect(out.exitCode).not.toBe(0);
    expect(out.stderr).toMatch(/Network is unreachable/);
  });

  it(
    "reaches neither the host's loopback, nor slirp's host alias, " + "nor the host's own or private addresses",
    async () => {
      const d = driver();
      const info = await d.create({ id: 'on', labels: {} });
      expect(info.isolation).toContain(
        '; network: slirp4netns (own namespace; internet only: host loopback, ' +
          "the host's addresses and private, shared and link-local ranges refused)",
      );
      expect(hostIp, 'this test needs a non-loopback IPv4 address on the host').toBeDefined();
      // 127.0.0.1 is the sandbox's own loopback; 10.0.2.2 would be the host's with slirp's default;
      // the host's own address reaches services bound to all interfaces; 169.254.169.254 is a cloud's metadata.
      for (const host of ['127.0.0.1', '10.0.2.2', hostIp!, '169.254.169.254', '192.168.1.1']) {
        const r = await connect(d, 'on', host);
        expect(r.exitCode, host).not.toBe(0);
        expect(r.stdout, host).toBe('');
        expect(r.stderr, host).toMatch(/Connection refused|Network is unreachable/);
      }
      const inside = await d.exec('on', {
        command: ['sh', '-c', "cat /etc/resolv.conf; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort"],
      });
      expect(inside.stdout).toBe('nameserver 10.0.2.3\nlo\ntap0\n');
      // The sandbox's user cannot lift the filter.
      const lift = await d.exec('on', { command: ['sh', '-c', 'iptables -F OUTPUT || /usr/sbin/iptables -F OUTPUT'] });
      expect(lift.exitCode).not.toBe(0);
      expect((await connect(d, 'on', hostIp!)).stdout).toBe('');
    },
  );

  it('reaches an address the operator allows (HOURGLASS_PROCESS_NETWORK_ALLOW): the route out works', async () => {
    const d = driver(undefined, { networkAllow: [`${hostIp}/32`] });
    const info = await d.create({ id: 'allowed', labels: {} });
    expect(info.isolation).toContain(`allowed besides: ${hostIp}/32`);
    expect((await connect(d, 'allowed', hostIp!)).stdout).toBe('hello from the host\n');
    expect((await connect(d, 'allowed', '10.0.2.2')).stdout).toBe('');
  });

  it('kills slirp4netns on stop and destroy, restarts it on start, and keeps it across a worker restart', async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-net-'));
    const d = driver(stateDir, { networkAllow: [`${hostIp}/32`] });
    const first = await d.create({ id: 'cycle', labels: {} });
    await d.stop('cycle');
    expect(await gone(first.details.slirpPid)).toBe(true);
    await d.start('cycle');
    const started = (await d.describe('cycle'))!;
    expect(started.details.slirpPid).not.toBe(first.details.slirpPid);
    expect((await connect(d, 'cycle', hostIp!)).stdout).toBe('hello from the host\n');

    // A worker restart with network now off: the sandbox keeps the network it was made with.
    const restarted = driver(stateDir, { network: false });
    expect((await connect(restarted, 'cycle', hostIp!)).stdout).toBe('hello from the host\n');
    expect(await restarted.destroy('cycle')).toEqual({ existed: true });
    expect(await gone(started.details.slirpPid)).toBe(true);
    expect(existsSync(path.join(stateDir, 'process', 'cycle'))).toBe(false);
  });
});
