// Domain XML for one Hourglass sandbox, and the metadata marker that says "Hourglass made this".
import { createHash } from 'node:crypto';

/** Namespace of the <metadata> element that marks a domain as ours (list/destroy check it). */
export const HOURGLASS_LIBVIRT_NS = 'urn:hourglass:libvirt:sandbox:1';
export const DOMAIN_PREFIX = 'hourglass-';

export function domainNameFor(id: string): string {
  return `${DOMAIN_PREFIX}${id}`;
}

/**
 * A UUID derived from the sandbox id: redefining the same name with the same UUID just updates
 * the config, so two racing creates of one id cannot fail with "domain already exists with uuid".
 */
export function domainUuidFor(id: string): string {
  const h = createHash('sha1').update(`hourglass-libvirt:${id}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5 (name-based, SHA-1)
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface DomainXmlOptions {
  id: string;
  /** 'qemu' = TCG (works everywhere), 'kvm' when /dev/kvm really works. */
  domainType: 'qemu' | 'kvm';
  /** 'microvm' (default), or 'pc' / 'q35' for guests whose kernel wants PCI. */
  machine: string;
  memoryMiB: number;
  cpus: number;
  kernel: string;
  initrd: string;
  kernelArgs: string;
  overlay: string;
  /** The shared base image the overlay backs onto (real path, not the rootfs.qcow2 symlink). */
  baseImage: string;
  consoleLog: string;
  emulator?: string;
  labels: Record<string, string>;
  createdAt: string;
}

export interface SandboxMarker {
  id: string;
  overlay?: string;
  consoleLog?: string;
}

export function buildDomainXml(o: DomainXmlOptions): string {
  const microvm = o.machine === 'microvm';
  // microvm has no PCI bus: virtio devices must sit on virtio-mmio, and libvirt must be told so.
  const mmio = microvm ? `<address type='virtio-mmio'/>` : '';
  const labels = Object.entries(o.labels)
    .map(([k, v]) => `\n      <hg:label key="${esc(k)}" value="${esc(v)}"/>`)
    .join('');
  return `<domain type='${o.domainType}'>
  <name>${esc(domainNameFor(o.id))}</name>
  <uuid>${domainUuidFor(o.id)}</uuid>
  <metadata>
    <hg:sandbox xmlns:hg="${HOURGLASS_LIBVIRT_NS}">
      <hg:id>${esc(o.id)}</hg:id>
      <hg:overlay>${esc(o.overlay)}</hg:overlay>
      <hg:console>${esc(o.consoleLog)}</hg:console>
      <hg:created>${esc(o.createdAt)}</hg:created>${labels}
    </hg:sandbox>
  </metadata>
  <memory unit='MiB'>${o.memoryMiB}</memory>
  <vcpu>${o.cpus}</vcpu>
  <os>
    <type arch='x86_64' machine='${esc(o.machine)}'>hvm</type>
    <kernel>${esc(o.kernel)}</kernel>
    <initrd>${esc(o.initrd)}</initrd>
    <cmdline>${esc(o.kernelArgs)}</cmdline>
  </os>
  <!-- Without ACPI, microvm guests find no virtio-mmio devices. -->
  <features><acpi/></features>
  <!-- A guest that reboots or panics (panic=-1) stops instead of looping; waitReady sees "shut off". -->
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>${o.emulator ? `\n    <emulator>${esc(o.emulator)}</emulator>` : ''}
    <!-- libvirt adds a USB controller by default, which microvm cannot host ("No PCI buses available"). -->
    <controller type='usb' model='none'/>
    <controller type='virtio-serial' index='0'>${mmio}</controller>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${esc(o.overlay)}'/>
      <!-- Spelled out so libvirt does not chown the shared base to the qemu user (and never give
           it back): it stays root's, read-only and world-readable, for every sandbox. -->
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='${esc(o.baseImage)}'>
          <seclabel model='dac' relabel='no'/>
        </source>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>${mmio}
    </disk>
    <channel type='unix'>
      <source mode='bind'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <!-- virtlogd (root) writes the console log, so it need not be writable by the qemu user. -->
    <serial type='pty'>
      <log file='${esc(o.consoleLog)}' append='off'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** Parses `virsh metadata <dom> <ns>` output; null when it is not a well-formed Hourglass marker. */
export function parseSandboxMarker(metadataXml: string): SandboxMarker | null {
  const id = textOf(metadataXml, 'id');
  if (!id) return null;
  return { id, overlay: textOf(metadataXml, 'overlay'), consoleLog: textOf(metadataXml, 'console') };
}

function textOf(xml: string, tag: string): string | undefined {
  // virsh prints the element without the prefix (<id>…</id>); accept a prefix anyway.
  const m = new RegExp(`<(?:\\w+:)?${tag}>([^<]*)</(?:\\w+:)?${tag}>`).exec(xml);
  return m ? unesc(m[1]!) : undefined;
}

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function unesc(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}
