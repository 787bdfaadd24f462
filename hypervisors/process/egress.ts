// What a network-enabled process sandbox may reach: the internet, not the networks around the
// host. slirp4netns relays the sandbox's connections as sockets of the host, so without a filter a
// sandbox reaches whatever the host reaches: services on the host's own addresses, its LAN, the
// cloud metadata endpoint, a compose network's Temporal and PostgreSQL. The filter lives in the
// sandbox's own network namespace, where its processes (uid 65534, no capabilities) cannot change it.
import os from 'node:os';
import { BadSpecError, HypervisorError } from '../errors';
import { runCommand } from '../common/run-command';
import { TOOLS_PATH } from './tools-path';

/** Ranges that are never the internet: this network, private, shared (CGNAT), link-local, multicast, reserved. */
export const NON_PUBLIC_RANGES = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
];

/** slirp4netns's DNS forwarder: the one private address a sandbox needs. */
const SLIRP_DNS = '10.0.2.3';

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** HOURGLASS_PROCESS_NETWORK_ALLOW: IPv4 addresses or CIDRs a sandbox may reach although not public. */
export function parseAllowList(text: string | undefined): string[] {
  const entries = (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const e of entries) {
    const m = CIDR.exec(e);
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || (m[5] !== undefined && Number(m[5]) > 32)) {
      throw new BadSpecError(
        `HOURGLASS_PROCESS_NETWORK_ALLOW: '${e}' is not an IPv4 address or CIDR (like 10.1.2.0/24)`,
      );
    }
  }
  return entries;
}

/** The host's own IPv4 addresses: public ones reach the host's services too. */
export function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a): a is os.NetworkInterfaceInfo => !!a && a.family === 'IPv4')
    .map((a) => `${a.address}/32`);
}

/** iptables-restore input: DNS and the allow list first, then every non-public range and the host refused. */
export function egressRules(allow: string[], host: string[] = hostAddresses()): string {
  const reject = (dst: string) => [
    `-A OUTPUT -d ${dst} -p tcp -j REJECT --reject-with tcp-reset`,
    `-A OUTPUT -d ${dst} -j REJECT --reject-with icmp-net-prohibited`,
  ];
  return [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A OUTPUT -o lo -j ACCEPT',
    `-A OUTPUT -d ${SLIRP_DNS}/32 -p udp --dport 53 -j ACCEPT`,
    `-A OUTPUT -d ${SLIRP_DNS}/32 -p tcp --dport 53 -j ACCEPT`,
    ...allow.map((a) => `-A OUTPUT -d ${a} -j ACCEPT`),
    ...[...NON_PUBLIC_RANGES, ...host].flatMap(reject),
    'COMMIT',
    '',
  ].join('\n');
}

/** Loads the rules into the holder's network namespace (before slirp4netns gives it a route out). */
export async function applyEgressRules(iptablesRestore: string, holderPid: number, allow: string[]): Promise<void> {
  const r = await runCommand(['nsenter', '-t', String(holderPid), '-n', '--', iptablesRestore], {
    input: egressRules(allow),
    env: { PATH: TOOLS_PATH },
    timeoutMs: 10_000,
  });
  if (r.exitCode !== 0) {
    throw new HypervisorError(
      `cannot load the sandbox's egress filter (iptables-restore exit ${r.exitCode}): ${r.stderr.trim()}`,
      'network_unavailable',
    );
  }
}
