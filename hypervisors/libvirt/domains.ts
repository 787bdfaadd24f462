// Which libvirt domains are our sandboxes: the metadata marker, not the name, decides, so a foreign
// "hourglass-x" domain is never touched.
import { dirname } from 'node:path';
import { errorText } from '../common/error-text';
import { NotFoundError } from '../errors';
import type { OpContext, VmState } from '../types';
import {
  DOMAIN_PREFIX,
  HOURGLASS_LIBVIRT_NS,
  domainNameFor,
  parseSandboxMarker,
  type SandboxMarker,
} from './domain-xml';
import type { Virsh } from './virsh';

/** What libvirt says about one of our domains. */
export interface OurDomain {
  name: string;
  libvirtState: string;
  marker: SandboxMarker;
}

export type Lookup = { kind: 'absent' } | { kind: 'foreign'; name: string } | ({ kind: 'ours' } & OurDomain);

/** The domain named after sandbox `id`, and whether Hourglass made it for that id. */
export async function lookupDomain(virsh: Virsh, id: string, ctx?: OpContext): Promise<Lookup> {
  const name = domainNameFor(id);
  let libvirtState: string;
  try {
    libvirtState = (await virsh.run(id, ['domstate', name], ctx)).trim();
  } catch (err) {
    if (err instanceof NotFoundError) return { kind: 'absent' };
    throw err;
  }
  const marker = await markerOf(virsh, name, ctx);
  if (!marker || marker.id !== id) return { kind: 'foreign', name };
  return { kind: 'ours', name, libvirtState, marker };
}

/**
 * Our domains whose overlay lives in `dir`: domains of another Hourglass deployment (or test run)
 * sharing this libvirtd are theirs, and only this deployment's may be reaped.
 */
export async function listOurDomains(virsh: Virsh, dir: string): Promise<OurDomain[]> {
  const table = await virsh.run('(list)', ['list', '--all']);
  const candidates = parseDomainTable(table).filter((d) => d.name.startsWith(DOMAIN_PREFIX));
  const markers = await mapLimited(candidates, 8, (d) => markerOf(virsh, d.name));
  return candidates.flatMap((d, i) => {
    const marker = markers[i];
    if (!marker || domainNameFor(marker.id) !== d.name) return [];
    if (!marker.overlay || dirname(marker.overlay) !== dir) return [];
    return [{ name: d.name, libvirtState: d.state, marker }];
  });
}

export function vmState(libvirtState: string): VmState {
  if (libvirtState === 'running' || libvirtState === 'idle' || libvirtState === 'blocked') return 'running';
  if (libvirtState === 'paused' || libvirtState === 'shut off' || libvirtState === 'pmsuspended') return 'stopped';
  return 'unknown';
}

async function markerOf(virsh: Virsh, name: string, ctx?: OpContext): Promise<SandboxMarker | null> {
  try {
    return parseSandboxMarker(await virsh.run(name, ['metadata', name, HOURGLASS_LIBVIRT_NS], ctx));
  } catch (err) {
    // "metadata not found" = a domain without our marker; a vanished domain is not ours either.
    if (err instanceof NotFoundError || /metadata not found/i.test(errorText(err))) return null;
    throw err;
  }
}

/** Parses `virsh list --all` ("Id Name State" table; State may be two words, e.g. "shut off"). */
function parseDomainTable(table: string): { name: string; state: string }[] {
  return table
    .split('\n')
    .slice(2)
    .map((line) => /^\s*(\S+)\s+(\S+)\s+(.+?)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[2]!, state: m[3]! }));
}

/** Like Promise.all(items.map(fn)), at most `limit` at a time (each is a virsh process). */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
