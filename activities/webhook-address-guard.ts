// Webhook URLs are chosen by tenants, and the worker that POSTs to them sits inside the operator's
// network: without a guard a webhook could reach PostgreSQL, Temporal, the cloud metadata service
// (169.254.169.254) or anything else behind the firewall. So addresses that are not public are
// refused — checked on the address the connection actually uses (a name that resolved to a public
// address at create time may resolve to 127.0.0.1 later: DNS rebinding), and once at create time
// for an early 400. HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1 is the explicit opt-in for local receivers.
import { BlockList, isIP } from 'node:net';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (some clouds' metadata lives here)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local: cloud metadata services
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique-local (AWS's IPv6 metadata fd00:ec2::254 is here)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

export class AddressRefusedError extends Error {}

/** Why an IP address may not receive webhooks, or undefined when it is public. */
export function refusedAddressReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  if (family === 6) {
    // IPv4 carried in IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d) reaches the IPv4 host.
    const embedded = embeddedIpv4(address);
    if (embedded) return refusedAddressReason(embedded);
  }
  if (!blocked.check(address, family === 4 ? 'ipv4' : 'ipv6')) return undefined;
  return `${address} is not a public address (loopback, private, link-local, unique-local or unspecified)`;
}

function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return undefined;
  const n = (parseInt(hex[1]!, 16) << 16) | parseInt(hex[2]!, 16);
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}

/** The host of a URL as a connection uses it: IPv6 literals without their brackets. */
export const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * Resolves a URL's host and refuses it when any of its addresses is not public (a name that also
 * resolves to a private address could be steered to it). For create time: an early, clear 400.
 */
export async function checkWebhookHost(url: URL, allowPrivate: boolean): Promise<void> {
  if (allowPrivate) return;
  const host = hostOf(url);
  const addresses = isIP(host) ? [host] : (await dns.promises.lookup(host, { all: true })).map((a) => a.address);
  for (const address of addresses) {
    const why = refusedAddressReason(address);
    if (why) throw new AddressRefusedError(`${host}: ${why}`);
  }
}

/**
 * A `lookup` for http(s).request that refuses non-public addresses: the check runs on the very
 * addresses the socket then connects to, so a rebinding DNS answer cannot slip past it.
 * (IP literals skip lookup in Node: check those with refusedAddressReason before connecting.)
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    for (const a of addresses) {
      const why = refusedAddressReason(a.address);
      if (why) return callback(new AddressRefusedError(`${hostname}: ${why}`), '', 0);
    }
    if (options.all) return (callback as unknown as (e: null, all: dns.LookupAddress[]) => void)(null, addresses);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' }), '', 0);
    callback(null, first.address, first.family);
  });
};
