// libvirt driver: one persistent domain per sandbox, driven through `virsh` (virsh.ts) against a
// real libvirtd. Linked clone = qcow2 overlay on the guest image (sandbox-files.ts); the domain's
// metadata marks it as ours (domains.ts); commands run through the QEMU guest agent (guest-agent.ts).
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorText } from '../common/error-text';
import { exists } from '../common/files';
import { BadSpecError, NotFoundError, NotReadyError } from '../errors';
import { runInGuest } from '../guest/exec';
import { planVmExec } from '../guest/vm-exec-plan';
import type {
  ExecRequest,
  ExecResult,
  Hypervisor,
  OpContext,
  OutputSink,
  SandboxFileSystem,
  SandboxSpec,
  StreamExecRequest,
  VmInfo,
} from '../types';
import { buildDomainXml, domainNameFor } from './domain-xml';
import { listOurDomains, lookupDomain, vmState, type OurDomain } from './domains';
import { virshGuestAgent, virshStreamingAgent } from './guest-agent';
import { libvirtFileTransport } from './file-transport';
import type { FileTransport } from '../guest/file-transport';
import { TransportFileSystem } from '../guest/sandbox-file-system';
import { runStreamingInGuest } from '../guest/stream-exec';
import { SandboxFiles } from './sandbox-files';
import { Virsh } from './virsh';
import type { LibvirtSettings } from '../../config/drivers';
import { VM_SANDBOX_ID } from '../common/vm-sandbox-id';

/** LibvirtSettings (config/drivers.ts) and the state dir. */
export interface LibvirtConfig {
  uri: string;
  stateDir: string;
  memoryMiB: number;
  cpus: number;
  domainType: 'qemu' | 'kvm';
  machine: string;
  kernelArgs: string;
  /** Directory of the guest image; undefined = resolveGuestImage's default. */
  imageDir?: string;
  emulator?: string;
}

const MIN_MEMORY_MIB = 96; // 64 MiB hangs while unpacking the initramfs

export function createLibvirtHypervisor(settings: LibvirtSettings, stateDir: string): Hypervisor {
  return new LibvirtHypervisor({ ...settings, stateDir: resolve(stateDir) });
}

export class LibvirtHypervisor implements Hypervisor {
  readonly name = 'libvirt';
  /** Files through the common layer (guest/sandbox-file-system.ts) over this driver's FileTransport. */
  readonly fileSystem: SandboxFileSystem = new TransportFileSystem(async (id) => this.fileTransport(id));
  private readonly virsh: Virsh;
  private readonly files: SandboxFiles;

  constructor(private readonly cfg: LibvirtConfig) {
    this.virsh = new Virsh(cfg.uri);
    this.files = new SandboxFiles(join(cfg.stateDir, 'libvirt'), cfg.imageDir);
  }

  private get isolation(): string {
    return this.cfg.domainType === 'kvm' ? 'libvirt-kvm' : 'libvirt-qemu-tcg';
  }

  async create(spec: SandboxSpec, ctx?: OpContext): Promise<VmInfo> {
    const id = checkId(spec.id);
    const memoryMiB = spec.limits?.memoryMiB ?? this.cfg.memoryMiB;
    const cpus = spec.limits?.cpus ?? this.cfg.cpus;
    if (!Number.isInteger(memoryMiB) || memoryMiB < MIN_MEMORY_MIB) {
      throw new BadSpecError(`sandbox ${id}: memoryMiB must be an integer >= ${MIN_MEMORY_MIB}, not ${memoryMiB}`);
    }
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) {
      throw new BadSpecError(`sandbox ${id}: cpus must be an integer in 1..64, not ${cpus}`);
    }

    const existing = await lookupDomain(this.virsh, id, ctx);
    if (existing.kind === 'foreign') {
      throw new BadSpecError(`sandbox ${id}: domain ${existing.name} exists but Hourglass did not create it`);
    }
    if (existing.kind === 'ours') {
      // A retry after a crash between define and start finds the domain shut off.
      if (existing.libvirtState === 'shut off') await this.startDomain(id, existing.name, ctx);
      return this.infoFor(id, ctx);
    }

    const image = await this.files.guestImage(spec);
    ctx?.progress?.(`sandbox ${id}: creating overlay`);
    await mkdir(this.files.dir, { recursive: true });
    // The QEMU process runs as libvirt-qemu: it must be able to reach the overlay.
    await chmod(this.files.dir, 0o755);
    const overlay = this.files.overlay(id);
    const baseImage = image.rootfs;
    if (!(await exists(overlay))) await this.files.createOverlay(id, baseImage, ctx);

    ctx?.progress?.(`sandbox ${id}: defining domain`);
    const xmlFile = join(this.files.dir, `${id}.xml`);
    await writeFile(
      xmlFile,
      buildDomainXml({
        id,
        domainType: this.cfg.domainType,
        machine: this.cfg.machine,
        memoryMiB,
        cpus,
        kernel: image.kernel,
        initrd: image.initrd,
        kernelArgs: this.cfg.kernelArgs,
        overlay,
        baseImage,
        consoleLog: this.files.consoleLog(id),
        emulator: this.cfg.emulator,
        labels: spec.labels ?? {},
        createdAt: new Date().toISOString(),
      }),
    );
    try {
      await this.virsh.run(id, ['define', xmlFile], ctx);
    } finally {
      await rm(xmlFile, { force: true });
    }
    await this.startDomain(id, domainNameFor(id), ctx);
    return this.infoFor(id, ctx);
  }

  async waitReady(id: string, timeoutMs: number, ctx?: OpContext): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastProblem = 'no answer yet';
    for (let attempt = 1; ; attempt++) {
      ctx?.signal?.throwIfAborted();
      const dom = await this.ours(id, ctx);
      if (dom.libvirtState === 'shut off' || dom.libvirtState === 'crashed') {
        // Nothing will answer any more: say so now rather than at the deadline.
        throw new NotReadyError(id, timeoutMs, `domain is ${dom.libvirtState}${await this.files.consoleTail(id)}`);
      }
      const remainingMs = deadline - Date.now();
      if (dom.libvirtState !== 'running') {
        lastProblem = `domain is ${dom.libvirtState}`;
      } else if ((await this.agentChannelState(id, ctx)) === 'disconnected') {
        // Asking the agent before it connects costs an "error" line in libvirtd's log per poll.
        lastProblem = 'guest agent not connected yet';
      } else if (remainingMs > 0) {
        try {
          const agentTimeoutS = Math.max(1, Math.min(3, Math.floor(remainingMs / 1000)));
          await this.virsh.agentCommand(id, { execute: 'guest-ping' }, agentTimeoutS, ctx);
          return;
        } catch (err) {
          if (err instanceof NotFoundError) throw err;
          lastProblem = errorText(err);
        }
      }
      if (Date.now() >= deadline) {
        throw new NotReadyError(id, timeoutMs, `${lastProblem}${await this.files.consoleTail(id)}`);
      }
      ctx?.progress?.(`sandbox ${id}: waiting for the guest agent (attempt ${attempt}: ${lastProblem})`);
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())), undefined, { signal: ctx?.signal });
    }
  }

  async exec(id: string, req: ExecRequest, ctx?: OpContext): Promise<ExecResult> {
    const plan = planVmExec(id, req);
    return runInGuest(virshGuestAgent(this.virsh, id, this.domainState(id)), plan, ctx);
  }

  async execStream(id: string, req: StreamExecRequest, onOutput: OutputSink, ctx?: OpContext): Promise<ExecResult> {
    const plan = planVmExec(id, req);
    const agent = virshStreamingAgent(this.virsh, id, this.domainState(id));
    return runStreamingInGuest(agent, plan, req.stdin, onOutput, ctx);
  }

  /** What the common file layer needs of this sandbox (guest/file-transport.ts). */
  fileTransport(id: string): FileTransport {
    return libvirtFileTransport(this.virsh, checkId(id), this.domainState(id), (command, opts = {}, ctx) => {
      const req = { command, timeoutSeconds: opts.timeoutSeconds };
      return opts.stdin ? this.execStream(id, { ...req, stdin: opts.stdin }, () => {}, ctx) : this.exec(id, req, ctx);
    });
  }

  private domainState(id: string): () => Promise<string> {
    return async () => (await this.ours(id)).libvirtState;
  }

  // stop/start = suspend/resume: the guest's memory and processes are kept; it just gets no CPU.
  async stop(id: string, ctx?: OpContext): Promise<void> {
    const dom = await this.ours(id, ctx);
    if (dom.libvirtState !== 'running') return; // paused or shut off: already stopped
    ctx?.progress?.(`sandbox ${id}: suspending`);
    await this.virsh.run(id, ['suspend', dom.name], ctx);
  }

  async start(id: string, ctx?: OpContext): Promise<void> {
    const dom = await this.ours(id, ctx);
    if (dom.libvirtState === 'paused') {
      ctx?.progress?.(`sandbox ${id}: resuming`);
      await this.virsh.run(id, ['resume', dom.name], ctx);
    } else if (dom.libvirtState === 'shut off') {
      // The guest powered off or crashed: boot it again from its overlay (memory is gone).
      await this.startDomain(id, dom.name, ctx);
    }
  }

  async destroy(id: string, ctx?: OpContext): Promise<{ existed: boolean }> {
    checkId(id);
    const dom = await lookupDomain(this.virsh, id, ctx);
    // Never touch a domain Hourglass did not make, even if its name looks like ours.
    if (dom.kind === 'foreign') return { existed: false };
    let existed = false;
    if (dom.kind === 'ours') {
      existed = true;
      ctx?.progress?.(`sandbox ${id}: destroying domain`);
      await this.virsh.run(
        id,
        ['destroy', dom.name],
        ctx,
        /domain is not running|failed to get domain|Domain not found/i,
      );
      ctx?.progress?.(`sandbox ${id}: undefining domain`);
      await this.virsh.run(id, ['undefine', dom.name], ctx, /failed to get domain|Domain not found/i);
    }
    const { overlay, consoleLog } = this.files.marked(id, dom.kind === 'ours' ? dom.marker : undefined);
    // An overlay without a domain is what a crash between qemu-img and define leaves behind.
    if (await exists(overlay)) existed = true;
    await rm(overlay, { force: true });
    await rm(consoleLog, { force: true });
    // libvirt keeps each domain's QEMU log after undefine; on a local system daemon, drop it too.
    if (this.cfg.uri === 'qemu:///system') await rm(`/var/log/libvirt/qemu/${domainNameFor(id)}.log`, { force: true });
    return { existed };
  }

  async list(): Promise<VmInfo[]> {
    return (await listOurDomains(this.virsh, this.files.dir)).map((dom) => this.toInfo(dom));
  }

  async describe(id: string): Promise<VmInfo | null> {
    const dom = await lookupDomain(this.virsh, checkId(id));
    return dom.kind === 'ours' ? this.toInfo(dom) : null;
  }

  private async ours(id: string, ctx?: OpContext): Promise<OurDomain> {
    const dom = await lookupDomain(this.virsh, checkId(id), ctx);
    if (dom.kind === 'absent') throw new NotFoundError(id, `no libvirt domain ${domainNameFor(id)}`);
    if (dom.kind === 'foreign') throw new NotFoundError(id, `domain ${dom.name} was not created by Hourglass`);
    return dom;
  }

  private async infoFor(id: string, ctx?: OpContext): Promise<VmInfo> {
    return this.toInfo(await this.ours(id, ctx));
  }

  private toInfo(dom: OurDomain): VmInfo {
    return {
      id: dom.marker.id,
      driver: this.name,
      state: vmState(dom.libvirtState),
      isolation: this.isolation,
      details: {
        domain: dom.name,
        uri: this.cfg.uri,
        libvirtState: dom.libvirtState,
        overlay: dom.marker.overlay,
        consoleLog: dom.marker.consoleLog,
        machine: this.cfg.machine,
      },
    };
  }

  private async startDomain(id: string, name: string, ctx?: OpContext): Promise<void> {
    ctx?.progress?.(`sandbox ${id}: starting domain`);
    // A concurrent create of the same id may have started it first.
    await this.virsh.run(id, ['start', name], ctx, /domain is already (active|running)/i);
  }

  /** 'connected' / 'disconnected' as libvirt sees the agent's virtio-serial port; undefined if it does not say. */
  private async agentChannelState(id: string, ctx?: OpContext): Promise<string | undefined> {
    const xml = await this.virsh.run(id, ['dumpxml', domainNameFor(id)], ctx);
    return /name='org\.qemu\.guest_agent\.0' state='(\w+)'/.exec(xml)?.[1];
  }
}

function checkId(id: string): string {
  // The id lands in a domain name and in file names: keep it to characters safe in both.
  if (!VM_SANDBOX_ID.test(id)) throw new BadSpecError(`sandbox id ${JSON.stringify(id)} is not usable by libvirt`);
  return id;
}
