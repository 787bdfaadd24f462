// The webhook address guard on every form an address can take: only public unicast passes, and an
// IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by that IPv4 address.
import { describe, expect, it } from 'vitest';
import { ipv6Bytes, refusedAddressReason } from '../../activities/webhook-address-guard';

describe('refusedAddressReason', () => {
  it.each([
    ['8.8.8.8'],
    ['1.1.1.1'],
    ['2606:4700:4700::1111'],
    ['::ffff:8.8.8.8'],
    ['64:ff9b::8.8.8.8'],
    ['64:ff9b::808:808'],
    ['2002:808:808::1'],
  ])('lets public %s pass', (address) => {
    expect(refusedAddressReason(address)).toBeUndefined();
  });

  it.each([
    ['IPv4 loopback', '127.0.0.1'],
    ['IPv4 private', '10.1.2.3'],
    ['IPv4 private 172.16/12', '172.20.0.1'],
    ['IPv4 link-local (metadata)', '169.254.169.254'],
    ['carrier-grade NAT', '100.100.100.200'],
    ['IPv4 documentation', '203.0.113.7'],
    ['IPv4 broadcast', '255.255.255.255'],
    ['IPv6 unspecified', '::'],
    ['IPv6 loopback', '::1'],
    ['IPv4-compatible ::/96 (deprecated), even of a public IPv4', '::8.8.8.8'],
    ['IPv4-compatible ::/96 in hex', '::7f00:1'],
    ['IPv4-mapped loopback, dotted', '::ffff:127.0.0.1'],
    ['IPv4-mapped loopback, hex', '::ffff:7f00:1'],
    ['IPv4-mapped loopback, written out in full', '0:0:0:0:0:ffff:7f00:1'],
    ['IPv4-mapped metadata', '::ffff:169.254.169.254'],
    ['NAT64 64:ff9b::/96 of metadata', '64:ff9b::a9fe:a9fe'],
    ['NAT64 64:ff9b::/96 of a private IPv4, dotted', '64:ff9b::10.0.0.1'],
    ['local-use NAT64 64:ff9b:1::/48', '64:ff9b:1::a00:1'],
    ['6to4 2002::/16 of loopback', '2002:7f00:1::1'],
    ['6to4 2002::/16 of a private IPv4', '2002:c0a8:101::1'],
    ['site-local fec0::/10', 'fec0::1'],
    ['discard-only 100::/64', '100::1'],
    ['unique-local (AWS metadata)', 'fd00:ec2::254'],
    ['link-local', 'fe80::1'],
    ['link-local with a zone', 'fe80::1%eth0'],
    ['multicast', 'ff02::1'],
    ['Teredo 2001::/32', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['IPv6 documentation', '2001:db8::1'],
    ['not an address', 'example.com'],
  ])('refuses %s (%s)', (_, address) => {
    expect(refusedAddressReason(address)).toEqual(expect.any(String));
  });

  it('names the embedded IPv4 address it judged', () => {
    expect(refusedAddressReason('64:ff9b::a9fe:a9fe')).toMatch(/carries 169\.254\.169\.254/);
  });
});

describe('ipv6Bytes', () => {
  it('expands ::, hex groups and a trailing dotted quad', () => {
    expect(ipv6Bytes('::1')).toEqual([...Array(15).fill(0), 1]);
    expect(ipv6Bytes('2002:7f00:1::')).toEqual([0x20, 0x02, 0x7f, 0, 0, 1, ...Array(10).fill(0)]);
    expect(ipv6Bytes('::ffff:1.2.3.4')).toEqual([...Array(10).fill(0), 0xff, 0xff, 1, 2, 3, 4]);
    expect(ipv6Bytes('1:2:3:4:5:6:7:8')).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  });
});
