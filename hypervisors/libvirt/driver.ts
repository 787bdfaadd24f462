// libvirt driver: one persistent domain per sandbox, driven through `virsh` against a real libvirtd.
// Linked clone = qcow2 overlay on the guest image; commands run through the QEMU guest agent.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorText } from '../shared/error-text';
import { BadSpecError, BusyError, HypervisorError, NotFoundError, NotReadyError } from '../errors';
import { VM_GUEST_HOME } from '../guest/contract';
import { runInGuest, type GuestAgent } from '../guest/exec';
import { planExec } from '../guest/exec-plan';
import { resolveGuestImage } from '../guest/image';
import { decodeExecStatus, guestExecArguments, type QgaExecStatus } from '../guest/qga-exec';
import {
  DOMAIN_PREFIX,
  HOURGLASS_LIBVIRT_NS,
  buildDomainXml,
  domainNameFor,
  parseSandboxMarker,
  type SandboxMarker,
} from './domain-xml';
import type { ExecRequest, ExecResult, Hypervisor, OpContext, SandboxSpec, VmInfo, VmState } from '../types';
import type { LibvirtSettings } from '../../config/drivers';

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

const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const MIN_MEMORY_MIB = 96; // 64 MiB hangs while unpacking the initramfs

export function createLibvirtHypervisor(settings: LibvirtSettings, stateDir: string): Hypervisor {
  return new LibvirtHypervisor({ ...settings, stateDir: resolve(stateDir) });
}

/** What libvirt says about one of our domains. */
interface OurDomain {
  name: string;
  libvirtState: string;
  marker: SandboxMarker;
}

type Lookup = { kind: 'absent' } | { kind: 'foreign'; name: string } | ({ kind: 'ours' } & OurDomain);

export class LibvirtHypervisor implements Hypervisor {
  readonly name = 'libvirt';
  private readonly dir: string;

  constructor(private readonly cfg: LibvirtConfig) {
    this.dir = join(cfg.stateDir, 'libvirt');
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

    const existing = await this.lookup(id, ctx);
    if (existing.kind === 'foreign') {
      throw new BadSpecError(`sandbox ${id}: domain ${existing.name} exists but Hourglass did not create it`);
    }
    if (existing.kind === 'ours') {
      // A retry after a crash between define and start finds the domain shut off.
      if (existing.libvirtState === 'shut off') await this.startDomain(id, existing.name, ctx);
      return this.infoFor(id, ctx);
    }

    const image = await this.guestImage(spec);
    ctx?.progress?.(`sandbox ${id}: creating overlay`);
    await mkdir(this.dir, { recursive: true });
    // The QEMU process runs as libvirt-qemu: it must be able to reach the overlay.
    await chmod(this.dir, 0o755);
    const overlay = this.overlayPath(id);
    const baseImage = image.rootfs;
    if (!(await exists(overlay))) await this.createOverlay(id, baseImage, overlay, ctx);

    ctx?.progress?.(`sandbox ${id}: defining domain`);
    const xmlFile = join(this.dir, `${id}.xml`);
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
        consoleLog: this.consoleLogPath(id),
        emulator: this.cfg.emulator,
        labels: spec.labels ?? {},
        createdAt: new Date().toISOString(),
      }),
    );
    try {
      await this.virsh(id, ['define', xmlFile], ctx);
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
        throw new NotReadyError(id, timeoutMs, `domain is ${dom.libvirtState}${await this.consoleTail(id)}`);
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
          await this.agent(id, { execute: 'guest-ping' }, agentTimeoutS, ctx);
          return;
        } catch (err) {
          if (err instanceof NotFoundError) throw err;
          lastProblem = errorText(err);
        }
      }
      if (Date.now() >= deadline) {
        throw new NotReadyError(id, timeoutMs, `${lastProblem}${await this.consoleTail(id)}`);
      }
      ctx?.progress?.(`sandbox ${id}: waiting for the guest agent (attempt ${attempt}: ${lastProblem})`);
      await sleep(Math.min(250, Math.max(0, deadline - Date.now())), undefined, { signal: ctx?.signal });
    }
  }

  async exec(id: string, req: ExecRequest, ctx?: OpContext): Promise<ExecResult> {
    const plan = planExec(id, req, VM_GUEST_HOME);
    // Every call is a virsh process: poll gently. The signal is left to the runner (a killed virsh
    // would fail the kill that follows a cancellation).
    const agent: GuestAgent = {
      exec: async (argv, env) => {
        const command = { execute: 'guest-exec', arguments: guestExecArguments(argv, env) };
        return ((await this.agentOrBusy(id, command)) as { pid: number }).pid;
      },
      status: async (pid) => {
        const command = { execute: 'guest-exec-status', arguments: { pid } };
        return decodeExecStatus((await this.agentOrBusy(id, command)) as QgaExecStatus);
      },
      pollMs: { first: 5, max: 250 },
    };
    return runInGuest(agent, plan, ctx);
  }

  // stop/start = suspend/resume: the guest's memory and processes are kept; it just gets no CPU.
  async stop(id: string, ctx?: OpContext): Promise<void> {
    const dom = await this.ours(id, ctx);
    if (dom.libvirtState !== 'running') return; // paused or shut off: already stopped
    ctx?.progress?.(`sandbox ${id}: suspending`);
    await this.virsh(id, ['suspend', dom.name], ctx);
  }

  async start(id: string, ctx?: OpContext): Promise<void> {
    const dom = await this.ours(id, ctx);
    if (dom.libvirtState === 'paused') {
      ctx?.progress?.(`sandbox ${id}: resuming`);
      await this.virsh(id, ['resume', dom.name], ctx);
    } else if (dom.libvirtState === 'shut off') {
      // The guest powered off or crashed: boot it again from its overlay (memory is gone).
      await this.startDomain(id, dom.name, ctx);
    }
  }

  async destroy(id: string, ctx?: OpContext): Promise<{ existed: boolean }> {
    checkId(id);
    const dom = await this.lookup(id, ctx);
    // Never touch a domain Hourglass did not make, even if its name looks like ours.
    if (dom.kind === 'foreign') return { existed: false };
    let existed = false;
    if (dom.kind === 'ours') {
      existed = true;
      ctx?.progress?.(`sandbox ${id}: destroying domain`);
      await this.virsh(id, ['destroy', dom.name], ctx, /domain is not running|failed to get domain|Domain not found/i);
      ctx?.progress?.(`sandbox ${id}: undefining domain`);
      await this.virsh(id, ['undefine', dom.name], ctx, /failed to get domain|Domain not found/i);
    }
    // The marker remembers the paths (a worker with another state dir still cleans up), but only
    // files named after this sandbox are ever removed.
    const marked = dom.kind === 'ours' ? dom.marker : undefined;
    const overlay = ownFile(marked?.overlay, `${id}.qcow2`) ?? this.overlayPath(id);
    const consoleLog = ownFile(marked?.consoleLog, `${id}.console.log`) ?? this.consoleLogPath(id);
    // An overlay without a domain is what a crash between qemu-img and define leaves behind.
    if (await exists(overlay)) existed = true;
    await rm(overlay, { force: true });
    await rm(consoleLog, { force: true });
    // libvirt keeps each domain's QEMU log after undefine; on a local system daemon, drop it too.
    if (this.cfg.uri === 'qemu:///system') await rm(`/var/log/libvirt/qemu/${domainNameFor(id)}.log`, { force: true });
    return { existed };
  }

  async list(): Promise<VmInfo[]> {
    const table = await this.virsh('(list)', ['list', '--all']);
    const candidates = parseDomainTable(table).filter((d) => d.name.startsWith(DOMAIN_PREFIX));
    const markers = await mapLimited(candidates, 8, (d) => this.markerOf(d.name));
    // The marker, not the name, decides: a foreign "hourglass-x" domain stays invisible. So do
    // domains of another Hourglass deployment (or test run) sharing this libvirtd: only overlays
    // under this driver's state dir are this deployment's, and only those may be reaped.
    return candidates.flatMap((d, i) => {
      const marker = markers[i];
      if (!marker || domainNameFor(marker.id) !== d.name) return [];
      if (!marker.overlay || dirname(marker.overlay) !== this.dir) return [];
      return [this.toInfo({ name: d.name, libvirtState: d.state, marker })];
    });
  }

  async describe(id: string): Promise<VmInfo | null> {
    const dom = await this.lookup(checkId(id));
    return dom.kind === 'ours' ? this.toInfo(dom) : null;
  }

  // ---- libvirt plumbing ----

  private async lookup(id: string, ctx?: OpContext): Promise<Lookup> {
    const name = domainNameFor(id);
    let libvirtState: string;
    try {
      libvirtState = (await this.virsh(id, ['domstate', name], ctx)).trim();
    } catch (err) {
      if (err instanceof NotFoundError) return { kind: 'absent' };
      throw err;
    }
    const marker = await this.markerOf(name, ctx);
    if (!marker || marker.id !== id) return { kind: 'foreign', name };
    return { kind: 'ours', name, libvirtState, marker };
  }

  private async ours(id: string, ctx?: OpContext): Promise<OurDomain> {
    const dom = await this.lookup(checkId(id), ctx);
    if (dom.kind === 'absent') throw new NotFoundError(id, `no libvirt domain ${domainNameFor(id)}`);
    if (dom.kind === 'foreign') throw new NotFoundError(id, `domain ${dom.name} was not created by Hourglass`);
    return dom;
  }

  private async markerOf(name: string, ctx?: OpContext): Promise<SandboxMarker | null> {
    try {
      return parseSandboxMarker(await this.virsh(name, ['metadata', name, HOURGLASS_LIBVIRT_NS], ctx));
    } catch (err) {
      // "metadata not found" = a domain without our marker; a vanished domain is not ours either.
      if (err instanceof NotFoundError || /metadata not found/i.test(errorText(err))) return null;
      throw err;
    }
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
    await this.virsh(id, ['start', name], ctx, /domain is already (active|running)/i);
  }

  private async guestImage(spec: SandboxSpec): Promise<{ kernel: string; initrd: string; rootfs: string }> {
    if (spec.template !== undefined && spec.template !== 'default') {
      throw new BadSpecError(`sandbox ${spec.id}: unknown libvirt template ${spec.template} (only "default")`);
    }
    try {
      const image = await resolveGuestImage(this.cfg.imageDir);
      // rootfs.qcow2 is a symlink to rootfs-<hash>.qcow2: back onto the real file, so a rebuilt
      // image does not change the disk under a live sandbox.
      return { kernel: resolve(image.kernel), initrd: resolve(image.initrd), rootfs: await realpath(image.rootfs) };
    } catch (err) {
      throw new BadSpecError(`sandbox ${spec.id}: guest image unavailable (npm run image:build): ${errorText(err)}`);
    }
  }

  private async createOverlay(id: string, baseImage: string, overlay: string, ctx?: OpContext): Promise<void> {
    // Write under a temporary name, then link: a half-written overlay is never taken for a good one,
    // and a racing create of the same id keeps the overlay that won (link fails with EEXIST).
    const tmp = `${overlay}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', baseImage, '-F', 'qcow2', tmp], {
        signal: ctx?.signal,
        timeoutMs: 60_000,
      });
      await link(tmp, overlay).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    } catch (err) {
      throw new HypervisorError(`sandbox ${id}: qemu-img create failed: ${errorText(err)}`, 'libvirt_error');
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private overlayPath(id: string): string {
    return join(this.dir, `${id}.qcow2`);
  }

  private consoleLogPath(id: string): string {
    return join(this.dir, `${id}.console.log`);
  }

  private async consoleTail(id: string): Promise<string> {
    try {
      const lines = (await readFile(this.consoleLogPath(id), 'utf8')).trim().split('\n');
      // A panic's cause is above its stack trace: name it, then the last lines.
      const panic = lines.find((l) => /Kernel panic/.test(l));
      const tail = [...(panic ? [panic.trim()] : []), ...lines.slice(-3).map((l) => l.trim())].filter(Boolean);
      return tail.length ? `; console: ${tail.join(' | ')}` : '';
    } catch {
      return '';
    }
  }

  /** 'connected' / 'disconnected' as libvirt sees the agent's virtio-serial port; undefined if it does not say. */
  private async agentChannelState(id: string, ctx?: OpContext): Promise<string | undefined> {
    const xml = await this.virsh(id, ['dumpxml', domainNameFor(id)], ctx);
    return /name='org\.qemu\.guest_agent\.0' state='(\w+)'/.exec(xml)?.[1];
  }

  /**
   * One guest-agent command; returns its "return" member. The command goes to virsh on its stdin,
   * not in its argv: a guest-exec carries the caller's env values, and any local user can read a
   * process's argv.
   */
  private async agent(id: string, command: object, timeoutS: number, ctx?: OpContext): Promise<unknown> {
    // virsh's shell reads a single-quoted word verbatim; JSON can spell every ' as \u0027.
    const json = JSON.stringify(command).replace(/'/g, '\\u0027');
    const script = `qemu-agent-command --domain ${domainNameFor(id)} --timeout ${timeoutS} '${json}'\n`;
    let out: string;
    try {
      out = await run('virsh', ['-q', '-c', this.cfg.uri], { signal: ctx?.signal, timeoutMs: 120_000, input: script });
    } catch (err) {
      throw classifyVirshError(id, 'qemu-agent-command', errorText(err), err);
    }
    // The shell echoes "virsh # <command>" before the answer: the answer is the line after it.
    const answer = out.split('virsh # ')[1]?.split('\n').slice(1).join('\n').trim() ?? '';
    return (JSON.parse(answer) as { return?: unknown }).return;
  }

  /** An agent command for exec: a stopped or not-yet-ready guest is Busy (retry later), not a failure. */
  private async agentOrBusy(id: string, command: object, ctx?: OpContext): Promise<unknown> {
    try {
      return await this.agent(id, command, 10, ctx);
    } catch (err) {
      if (!(err instanceof HypervisorError) || err instanceof NotFoundError || err instanceof BadSpecError) throw err;
      const dom = await this.ours(id, ctx);
      if (dom.libvirtState !== 'running') throw new BusyError(`sandbox ${id} is ${dom.libvirtState}: ${err.message}`);
      throw err;
    }
  }

  /**
   * Runs `virsh -c <uri> …`, returns stdout. `ignore` matches errors that mean "already done".
   * Errors become NotFoundError / BadSpecError / BusyError / retryable HypervisorError, naming the sandbox.
   */
  private async virsh(id: string, args: string[], ctx?: OpContext, ignore?: RegExp): Promise<string> {
    try {
      return await run('virsh', ['-c', this.cfg.uri, ...args], { signal: ctx?.signal, timeoutMs: 120_000 });
    } catch (err) {
      const text = errorText(err);
      if (ignore?.test(text)) return '';
      throw classifyVirshError(id, args[0] ?? '', text, err);
    }
  }
}

function vmState(libvirtState: string): VmState {
  if (libvirtState === 'running' || libvirtState === 'idle' || libvirtState === 'blocked') return 'running';
  if (libvirtState === 'paused' || libvirtState === 'shut off' || libvirtState === 'pmsuspended') return 'stopped';
  return 'unknown';
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

function ownFile(path: string | undefined, expectedName: string): string | undefined {
  return path && isAbsolute(path) && basename(path) === expectedName ? path : undefined;
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

function checkId(id: string): string {
  // The id lands in a domain name and in file names: keep it to characters safe in both.
  if (!SANDBOX_ID.test(id)) throw new BadSpecError(`sandbox id ${JSON.stringify(id)} is not usable by libvirt`);
  return id;
}

function classifyVirshError(id: string, op: string, text: string, cause: unknown): Error {
  const what = `sandbox ${id}: virsh ${op}: ${text}`;
  if (/Failed to connect socket|failed to connect to the hypervisor/i.test(text)) {
    // libvirtd is down or restarting (scripts/start-libvirtd.sh): worth retrying.
    return new HypervisorError(what, 'libvirt_unavailable', false);
  }
  if (/failed to get domain|Domain not found|no domain with matching/i.test(text)) return new NotFoundError(id, text);
  if (
    /XML error|unsupported configuration|invalid argument|Cannot access storage file|No such file or directory/i.test(
      text,
    )
  ) {
    return new BadSpecError(what);
  }
  if (/Permission denied/i.test(text)) {
    return new BadSpecError(
      `${what} (every directory above the overlay and image must be searchable by the qemu user)`,
    );
  }
  if (
    /guest agent is not|agent is not (connected|responding|available)|cannot acquire state change lock|Timed out during operation|domain is not running/i.test(
      text,
    )
  ) {
    return new BusyError(what);
  }
  if (cause instanceof Error && cause.name === 'AbortError') return cause;
  return new HypervisorError(what, 'libvirt_error', false);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** execFile with English messages; rejects with the tool's stderr as the message. */
/** `input` feeds virsh's shell, which exits 0 whatever its commands did: its "error:" lines say. */
function run(
  cmd: string,
  args: string[],
  opts: { signal?: AbortSignal; timeoutMs: number; input?: string },
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        env: { ...process.env, LC_ALL: 'C' },
        timeout: opts.timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        signal: opts.signal,
      },
      (err, stdout, stderr) => {
        const shellError = opts.input !== undefined && /^error:/m.test(stderr);
        if (!err && !shellError) return resolvePromise(stdout);
        if (err?.name === 'AbortError') return reject(err);
        const msg = stderr
          .split('\n')
          .map((l) => l.replace(/^error:\s*/, '').trim())
          .filter(Boolean)
          .join('; ');
        reject(new Error(msg || err?.message || 'virsh failed'));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
