// Webhook URLs are chosen by tenants, and the worker that POSTs to them sits inside the operator's
// network: without a guard a webhook could reach PostgreSQL, Temporal, the cloud metadata service
// (169.254.169.254) or anything else behind the firewall. So addresses that are not public are
// refused — checked on the address the connection actually uses (a name that resolved to a public
// address at create time may resolve to 127.0.0.1 later: DNS rebinding), and once at create time
// for an early 400. HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1 is the explicit opt-in for local receivers.
import { BlockList, isIP } from 'node:net';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

// IPv4: everything but the special-purpose ranges (RFC 6890 and its updates).
const blockedV4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT (some clouds' metadata lives here)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local: cloud metadata services
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blockedV4.addSubnet(net, bits, 'ipv4');
}

// IPv6: an allowlist — only global unicast (2000::/3) passes, which leaves out loopback, unspecified,
// unique-local (AWS's metadata fd00:ec2::254), link-local, site-local fec0::/10, multicast, discard
// 100::/64, IPv4-compatible ::/96 and local-use NAT64 64:ff9b:1::/48 (where its IPv4 sits depends on
// the operator's prefix). Then the special ranges inside 2000::/3 are taken out again.
const globalV6 = new BlockList();
globalV6.addSubnet('2000::', 3, 'ipv6');
const blockedV6 = new BlockList();
for (const [net, bits] of [
  ['2001::', 23], // IETF protocol assignments (Teredo 2001::/32, whose IPv4 is obfuscated, among them)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
] as const) {
  blockedV6.addSubnet(net, bits, 'ipv6');
}

export class AddressRefusedError extends Error {}

/** Why an IP address may not receive webhooks, or undefined when it is public. */
export function refusedAddressReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  if (family === 4) return blockedV4.check(address, 'ipv4') ? notPublic(address) : undefined;
  const bytes = ipv6Bytes(address);
  if (!bytes) return `${address} is not a routable IPv6 address`; // e.g. a zone id (fe80::1%eth0)
  // IPv4 carried in IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::)
  // reaches that IPv4 host: it is judged as the IPv4 address.
  const v4 = embeddedIpv4(bytes);
  if (v4 !== undefined) {
    const why = refusedAddressReason(v4);
    return why && `${address} carries ${v4}: ${why}`;
  }
  if (globalV6.check(address, 'ipv6') && !blockedV6.check(address, 'ipv6')) return undefined;
  return notPublic(address);
}

const notPublic = (address: string) =>
  `${address} is not a public address (loopback, private, link-local, unique-local, reserved or unspecified)`;

/** The 16 bytes of an IPv6 address (isIP already said it is one), or undefined for a scoped one. */
export function ipv6Bytes(address: string): number[] | undefined {
  if (address.includes('%')) return undefined;
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const groups = (part: string | undefined) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(tail);
  const words = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  return words.flatMap((w) => [w >> 8, w & 255]);
}

const startsWith = (bytes: number[], prefix: number[]) => prefix.every((b, i) => bytes[i] === b);
const dottedQuad = (b: number[]) => b.join('.');

/** The IPv4 address an IPv6 one reaches, for the forms that carry one. */
function embeddedIpv4(b: number[]): string | undefined {
  const zeros = (n: number) => Array<number>(n).fill(0);
  if (startsWith(b, [...zeros(10), 0xff, 0xff])) return dottedQuad(b.slice(12)); // ::ffff:0:0/96 mapped
  if (startsWith(b, [0, 0x64, 0xff, 0x9b, ...zeros(8)])) return dottedQuad(b.slice(12)); // 64:ff9b::/96 NAT64
  if (startsWith(b, [0x20, 0x02])) return dottedQuad(b.slice(2, 6)); // 2002::/16 6to4
  return undefined;
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
