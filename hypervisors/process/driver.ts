// The embedded default driver: each sandbox is a private working directory, confined as its record
// says. With bubblewrap (the default) a long-lived holder owns new pid/mount/ipc/uts/net/cgroup
// namespaces (holder.ts) and every command enters them with nsenter (command.ts); killing the holder
// (pid 1 inside) ends every process in it (end-processes.ts). Either way every process joins the
// sandbox's cgroup (memory, pids, cpu), its /work is a size-limited ext4 image, and with bubblewrap
// /tmp is a size-limited tmpfs and a seccomp filter refuses new user namespaces.
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { exists } from '../common/files';
import { ensureCgroup, newCgroupRecord, removeCgroup } from './cgroups';
import { detectCgroups, type CgroupSupport } from './cgroups-detect';
import { enforcedCgroupLimits, sandboxCgroupDirs } from './cgroups-plan';
import { BadSpecError, IsolationUnavailableError, NotFoundError, NotReadyError } from '../errors';
import { isAlive } from '../common/proc-identity';
import { SANDBOX_UID } from './bwrap';
import { runInSandbox } from './command';
import {
  checkCgroupParent,
  DEFAULT_LIMITS,
  resolveLimits,
  type IsolationMode,
  type ProcessOptions,
  type ResolvedLimits,
} from './config';
import { describeHost, describeSandbox, modeMismatchNote } from './describe';
import { endProcesses, endSlirp } from './end-processes';
import { startHolder } from './holder';
import { detectHostSupport, requireHostSupport, requireServable, toolVersion, type HostSupport } from './host-support';
import { TOOLS_PATH } from './tools-path';
import { readMountsSync } from './mountinfo';
import { startNetwork } from './network';
import type { SandboxRecord } from './record';
import { SandboxFiles } from './sandbox-files';
import { SandboxLocks } from './sandbox-lock';
import { workspaceMountedIn, WorkspaceImages } from './workspace';
import { ProcessFileTransport } from './file-transport';
import type { HostStream } from '../guest/host-exec';
import { TransportFileSystem } from '../guest/sandbox-file-system';
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
import type { ProcessSettings } from '../../config/drivers';

export type { ProcessOptions } from './config';

export function createProcessHypervisor(settings: ProcessSettings, stateDir: string): Hypervisor {
  return new ProcessHypervisor({ ...settings, stateDir });
}

export class ProcessHypervisor implements Hypervisor {
  readonly name = 'process';
  private readonly files: SandboxFiles;
  private readonly mode: IsolationMode;
  private readonly network: boolean;
  private readonly networkAllow: string[];
  private readonly defaults: ResolvedLimits;
  private readonly host: HostSupport;
  private readonly cgroups: CgroupSupport;
  /** `<HOURGLASS_CGROUP_PARENT>/<hash of the state dir>`: workers with different state dirs never share a cgroup. */
  private readonly cgroupParentPath: string;
  private readonly workspaces: WorkspaceImages;
  /** Per sandbox, across processes sharing this state dir. */
  private readonly locks: SandboxLocks;
  /** Files through commands in the sandbox (guest/sandbox-file-system.ts), never the host's view of them. */
  readonly fileSystem: SandboxFileSystem = new TransportFileSystem((id) => this.fileTransport(id));

  constructor(opts: ProcessOptions) {
    this.files = new SandboxFiles(opts.stateDir);
    this.mode = opts.isolation ?? 'bubblewrap';
    this.network = opts.network ?? false;
    this.defaults = { ...DEFAULT_LIMITS, ...definedFields(opts.limits ?? {}) };
    resolveLimits('(defaults)', this.defaults, DEFAULT_LIMITS); // a bad default is a bug of the caller: say so now
    this.host = detectHostSupport(opts.searchPath ?? process.env.PATH ?? TOOLS_PATH);
    this.networkAllow = opts.networkAllow ?? [];
    const stateHash = createHash('sha256').update(this.files.root).digest('hex').slice(0, 8);
    this.cgroupParentPath = `${checkCgroupParent(opts.cgroupParent ?? 'hourglass')}/${stateHash}`;
    this.cgroups = detectCgroups(readMountsSync(), this.cgroupParentPath);
    this.workspaces = new WorkspaceImages(path.join(this.files.assets, 'workspace-templates'));
    this.locks = new SandboxLocks(path.join(this.files.assets, 'locks'));
  }

  summary(): string {
    const { bwrap, slirp, iptablesRestore, loopUnavailable, pidsCap } = this.host;
    return describeHost({
      mode: this.mode,
      bwrap,
      bwrapVersion: bwrap ? toolVersion(bwrap) : null,
      network: this.network,
      slirp,
      iptablesRestore,
      networkAllow: this.networkAllow,
      cgroups: this.cgroups,
      cgroupParentPath: this.cgroupParentPath,
      loopUnavailable,
      defaults: this.defaults,
      hostPidsCap: pidsCap,
    });
  }

  /** Sandboxes keep running; this worker's parent cgroup goes once it is empty (rmdir refuses otherwise). */
  async close(): Promise<void> {
    const cg = this.cgroups;
    const mounts = cg.version === 1 ? Object.values(cg.mounts) : cg.version === 2 ? [cg.mount] : [];
    for (const mount of new Set(mounts)) await rmdir(path.join(mount, this.cgroupParentPath)).catch(() => {});
  }

  async create(spec: SandboxSpec, ctx?: OpContext): Promise<VmInfo> {
    if (spec.template && spec.template !== 'default') {
      throw new BadSpecError(`unknown template '${spec.template}' for driver process; available: default`);
    }
    const dir = this.files.dir(spec.id);
    return this.locks.run(spec.id, async () => {
      // An attempt the server gave up on (cancelled) must not touch what its retry is using.
      ctx?.signal?.throwIfAborted();
      // A retry of create finds what an earlier attempt recorded and completes it.
      let record = await this.files.read(spec.id);
      if (!record) {
        const limits = resolveLimits(spec.id, spec.limits, this.defaults);
        const network = this.mode === 'bubblewrap' && this.network ? 'slirp4netns' : 'none';
        requireHostSupport(this.host, spec.id, this.mode, network, limits.diskMiB);
        record = this.newRecord(spec, limits);
        await mkdir(this.files.workDir(spec.id), { recursive: true, mode: 0o711 });
        await chmod(dir, 0o711);
        // Record first: a worker that dies right after starting anything leaves a sandbox that
        // list() still finds and destroy() can still remove (cgroup, mount, image, processes).
        await this.files.write(record);
      }
      await this.bringUp(record);
      return this.info(record);
    });
  }

  private newRecord(spec: SandboxSpec, limits: ResolvedLimits): SandboxRecord {
    const cgroup = newCgroupRecord(this.cgroups, this.cgroupParentPath, spec.id) ?? undefined;
    const record: SandboxRecord = {
      id: spec.id,
      labels: spec.labels,
      createdAt: new Date().toISOString(),
      isolation: '',
      mode: this.mode,
      network: this.mode === 'none' ? 'host' : this.network ? 'slirp4netns' : 'none',
      ...(this.mode === 'bubblewrap' && this.network ? { egressAllow: this.networkAllow } : {}),
      limits: {
        ...(cgroup ? enforcedCgroupLimits(cgroup, limits) : {}),
        ...(this.mode === 'bubblewrap' ? { tmpMiB: limits.tmpMiB } : {}),
        ...(limits.diskMiB > 0 ? { diskMiB: limits.diskMiB } : {}),
      },
      cgroup,
      workspace:
        limits.diskMiB > 0
          ? { image: path.join(this.files.dir(spec.id), 'workspace.ext4'), sizeMiB: limits.diskMiB }
          : undefined,
    };
    record.isolation = describeSandbox(record, this.cgroups.version === null ? this.cgroups.reason : null);
    return record;
  }

  /** Makes the sandbox whole: cgroup with its limits, workspace mounted, holder and network running. Idempotent. */
  private async bringUp(r: SandboxRecord): Promise<void> {
    requireServable(this.host, this.mode, r, true);
    if (r.cgroup) await ensureCgroup(r.cgroup, r.limits, this.host.pidsCap);
    const work = this.files.workDir(r.id);
    await mkdir(work, { recursive: true });
    // The directory under the workspace mount; without a quota it is the workspace itself.
    if (!r.workspace && process.getuid?.() === 0) await chown(work, SANDBOX_UID, SANDBOX_UID);
    if (r.mode === 'bubblewrap') {
      if (!(r.holder && (await isAlive(r.holder)))) {
        await this.endProcesses(r); // strays from a create that died half-way: one holder per sandbox
        await startHolder(r, this.files, this.host.bwrap!);
      }
      if (r.workspace && !(await workspaceMountedIn(r.holder!.pid))) await this.mountWorkspace(r);
      if (r.network === 'slirp4netns' && !(r.slirp && (await isAlive(r.slirp)))) {
        await endSlirp(r, r.id);
        await startNetwork(r, this.host, this.files);
      }
      return;
    }
    if (r.workspace) await this.workspaces.mountOnHost(r.workspace, work);
    if (r.stopped) {
      r.stopped = false;
      await this.files.write(r);
    }
  }

  /** Mounts the workspace inside the holder's mount namespace; the loop device is recorded first. */
  private async mountWorkspace(r: SandboxRecord): Promise<void> {
    // Said before attaching: a worker that dies before recording the device leaves destroy a
    // reason to search every loop device for the image (too slow to do on every destroy).
    r.attachingLoop = true;
    await this.files.write(r);
    const loop = await this.workspaces.attach(r.workspace!, r.loop);
    r.loop = loop;
    r.attachingLoop = undefined;
    await this.files.write(r);
    await this.workspaces.mountInSandbox(r.workspace!, loop, r.holder!.pid);
  }

  async waitReady(id: string, timeoutMs: number, ctx?: OpContext): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      ctx?.signal?.throwIfAborted();
      try {
        const r = await this.exec(id, { command: ['true'], timeoutSeconds: 5 });
        if (r.exitCode === 0) return;
        last = r.stderr;
      } catch (err) {
        if (err instanceof NotFoundError || err instanceof IsolationUnavailableError) throw err;
        last = (err as Error).message;
      }
      ctx?.progress?.('waiting for sandbox to answer');
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new NotReadyError(id, timeoutMs, last);
  }

  async exec(id: string, req: ExecRequest, ctx?: OpContext): Promise<ExecResult> {
    const r = await this.files.read(id);
    if (!r) throw new NotFoundError(id);
    requireServable(this.host, this.mode, r, false);
    return runInSandbox(id, r, req, this.files, this.host.bwrap, ctx?.signal);
  }

  execStream(id: string, req: StreamExecRequest, onOutput: OutputSink, ctx?: OpContext): Promise<ExecResult> {
    return this.runStreamed(id, req, { onOutput, stdin: req.stdin, onStart: req.onStart }, ctx);
  }

  /** exec with its output handed over as it is read and its stdin fed (execStream, file transfers). */
  private async runStreamed(id: string, req: ExecRequest, stream: HostStream, ctx?: OpContext): Promise<ExecResult> {
    const r = await this.files.read(id);
    if (!r) throw new NotFoundError(id);
    requireServable(this.host, this.mode, r, false);
    return runInSandbox(id, r, req, this.files, this.host.bwrap, ctx?.signal, stream);
  }

  /** Commands see the workspace at /work in their namespace; without isolation, at its host directory. */
  private async fileTransport(id: string): Promise<ProcessFileTransport> {
    const r = await this.files.read(id);
    if (!r) throw new NotFoundError(id);
    const workspace = r.mode === 'bubblewrap' ? '/work' : this.files.workDir(id);
    return new ProcessFileTransport(id, workspace, (req, stream, ctx) => this.runStreamed(id, req, stream, ctx));
  }

  /** Stop ends every process but keeps the directory, cgroup and workspace; start brings up a fresh namespace. */
  async stop(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const r = await this.files.read(id);
      if (!r) throw new NotFoundError(id);
      await this.endProcesses(r);
      r.holder = undefined;
      r.slirp = undefined;
      if (r.mode === 'none') r.stopped = true;
      await this.files.write(r);
    });
  }

  async start(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const r = await this.files.read(id);
      if (!r) throw new NotFoundError(id);
      await this.bringUp(r);
    });
  }

  async destroy(id: string): Promise<{ existed: boolean }> {
    const dir = this.files.dir(id);
    return this.locks.run(id, async () => {
      const r = await this.files.read(id);
      const existed = r !== null || (await exists(dir));
      if (!existed) return { existed: false };
      await this.endProcesses(r, id);
      if (r?.cgroup) await removeCgroup(r.cgroup, id);
      // Never rm -rf through a mounted workspace: unmountFromHost() returns only once it is gone.
      await this.workspaces.unmountFromHost(this.files.workDir(id));
      if (r?.workspace && r.attachingLoop) await this.workspaces.releaseAnyLoop(r.workspace);
      await rm(dir, { recursive: true, force: true });
      return { existed: true };
    });
  }

  private endProcesses(r: SandboxRecord | null, id = r!.id): Promise<void> {
    return endProcesses(r, id, this.files, this.workspaces);
  }

  async list(): Promise<VmInfo[]> {
    const infos: VmInfo[] = [];
    for (const r of await this.files.records()) infos.push(await this.info(r));
    return infos;
  }

  async describe(id: string): Promise<VmInfo | null> {
    const r = await this.files.read(id);
    return r ? this.info(r) : null;
  }

  private async info(r: SandboxRecord): Promise<VmInfo> {
    const running = r.mode === 'bubblewrap' ? Boolean(r.holder && (await isAlive(r.holder))) : !r.stopped;
    return {
      id: r.id,
      driver: this.name,
      state: running ? 'running' : 'stopped',
      isolation: r.isolation + modeMismatchNote(r.mode, this.mode),
      limits: r.limits,
      details: {
        dir: this.files.workDir(r.id),
        holderPid: r.holder?.pid,
        slirpPid: r.slirp?.pid,
        cgroups: r.cgroup ? sandboxCgroupDirs(r.cgroup) : [],
        workspaceImage: r.workspace?.image,
        labels: r.labels,
      },
    };
  }
}

function definedFields<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
