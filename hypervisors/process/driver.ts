// The embedded default driver: each sandbox is a private working directory, confined as its record
// says. With bubblewrap (the default) a long-lived holder owns new pid/mount/ipc/uts/net/cgroup
// namespaces and every command enters them with nsenter; killing the holder (pid 1 inside) ends
// every process in it. Either way every process joins the sandbox's cgroup (memory, pids, cpu), its
// /work is a size-limited ext4 image, and with bubblewrap /tmp is a size-limited tmpfs and a
// seccomp filter refuses new user namespaces.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exists } from '../shared/files';
import { cgroupExists, emptyCgroup, ensureCgroup, newCgroupRecord, removeCgroup } from './cgroups';
import { detectCgroups, type CgroupSupport } from './cgroups-detect';
import { cgroupProcsFiles, enforcedCgroupLimits, sandboxCgroupDirs } from './cgroups-plan';
import { BadSpecError, BusyError, IsolationUnavailableError, NotFoundError, NotReadyError } from '../errors';
import { findExecutable } from '../shared/find-executable';
import { planExec } from '../guest/exec-plan';
import { runOnHost } from '../guest/host-exec';
import { isAlive, recordProcess, signalIfOurs, waitForExit } from '../shared/proc-identity';
import {
  dropPrivilegesArgs,
  holderBwrapArgs,
  INFO_FD,
  READY_FD,
  SANDBOX_UID,
  SECCOMP_FD,
  seccompWrapperArgs,
} from './bwrap';
import {
  checkCgroupParent,
  DEFAULT_LIMITS,
  resolveLimits,
  type IsolationMode,
  type ProcessOptions,
  type ResolvedLimits,
} from './config';
import { describeHost, describeSandbox, modeMismatchNote } from './describe';
import { launchArgv } from './launcher';
import { readMountsSync } from './mountinfo';
import { applyEgressRules } from './egress';
import { RESOLV_CONF, resolvConfTarget, slirpMarker, startSlirp } from './network';
import { readRecord, writeRecord, type SandboxRecord } from './record';
import { isMounted, workspaceMountedIn, WorkspaceImages } from './workspace';
import { findProcesses, type ProcessInfo } from '../shared/process-table';
import { SandboxLocks } from './sandbox-lock';
import { spawnDetached } from '../shared/spawner/index';
import { sandboxSeccompFilter } from './seccomp-policy';
import type { ExecRequest, ExecResult, Hypervisor, OpContext, SandboxSpec, VmInfo } from '../types';
import type { ProcessSettings } from '../../config/drivers';

export type { ProcessOptions } from './config';

/** Tools the driver itself runs (nsenter, mount…): a fixed PATH, never the caller's. */
const TOOLS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/** Sandbox commands are the first the OOM killer takes, in their cgroup and on the host. */
const COMMAND_OOM_SCORE_ADJ = 1000;

export class ProcessHypervisor implements Hypervisor {
  readonly name = 'process';
  private readonly root: string;
  /** The driver's own files (workspace templates, the seccomp filter), beside the sandboxes' directories. */
  private readonly assets: string;
  private readonly mode: IsolationMode;
  private readonly network: boolean;
  private readonly networkAllow: string[];
  private readonly iptablesRestore: string | null;
  private readonly defaults: ResolvedLimits;
  private readonly bwrap: string | null;
  private readonly slirp: string | null;
  private readonly cgroups: CgroupSupport;
  /** `<HOURGLASS_CGROUP_PARENT>/<hash of the state dir>`: workers with different state dirs never share a cgroup. */
  private readonly cgroupParentPath: string;
  private readonly loopUnavailable: string | null;
  /** Processes of all sandboxes together: half of the kernel's pid_max, the rest is the host's. */
  private readonly hostPidsCap: number | undefined;
  private readonly workspaces: WorkspaceImages;
  /** Per sandbox, across processes sharing this state dir. */
  private readonly locks: SandboxLocks;
  private seccompFile?: Promise<string>;

  constructor(opts: ProcessOptions) {
    // Absolute and without symlinks: recorded paths must mean the same to any later worker, and
    // the kernel names a loop device's backing file that way.
    // Others may pass through (an isolation-none command, as uid 65534, runs in its work dir) but
    // not list the sandboxes nor read their records.
    mkdirSync(path.join(opts.stateDir, 'process'), { recursive: true });
    chmodSync(path.join(opts.stateDir, 'process'), 0o711);
    this.root = realpathSync(path.join(opts.stateDir, 'process'));
    this.assets = path.join(path.dirname(this.root), 'process-assets');
    this.mode = opts.isolation ?? 'bubblewrap';
    this.network = opts.network ?? false;
    this.defaults = { ...DEFAULT_LIMITS, ...definedFields(opts.limits ?? {}) };
    resolveLimits('(defaults)', this.defaults, DEFAULT_LIMITS); // a bad default is a bug of the caller: say so now
    const searchPath = opts.searchPath ?? process.env.PATH ?? TOOLS_PATH;
    this.bwrap = findExecutable('bwrap', searchPath);
    this.slirp = findExecutable('slirp4netns', searchPath);
    this.iptablesRestore = findExecutable('iptables-restore', searchPath);
    this.networkAllow = opts.networkAllow ?? [];
    const stateHash = createHash('sha256').update(this.root).digest('hex').slice(0, 8);
    this.cgroupParentPath = `${checkCgroupParent(opts.cgroupParent ?? 'hourglass')}/${stateHash}`;
    this.cgroups = detectCgroups(readMountsSync(), this.cgroupParentPath);
    this.hostPidsCap = hostPidsCap();
    this.loopUnavailable = WorkspaceImages.unavailableReason();
    this.workspaces = new WorkspaceImages(path.join(this.assets, 'workspace-templates'));
    this.locks = new SandboxLocks(path.join(this.assets, 'locks'));
  }

  summary(): string {
    return describeHost({
      mode: this.mode,
      bwrap: this.bwrap,
      bwrapVersion: this.bwrap ? toolVersion(this.bwrap) : null,
      network: this.network,
      slirp: this.slirp,
      iptablesRestore: this.iptablesRestore,
      networkAllow: this.networkAllow,
      cgroups: this.cgroups,
      cgroupParentPath: this.cgroupParentPath,
      loopUnavailable: this.loopUnavailable,
      defaults: this.defaults,
      hostPidsCap: this.hostPidsCap,
    });
  }

  /** Sandboxes keep running; this worker's parent cgroup goes once it is empty (rmdir refuses otherwise). */
  async close(): Promise<void> {
    const cg = this.cgroups;
    const mounts = cg.version === 1 ? Object.values(cg.mounts) : cg.version === 2 ? [cg.mount] : [];
    for (const mount of new Set(mounts)) await rmdir(path.join(mount, this.cgroupParentPath)).catch(() => {});
  }

  private dir(id: string) {
    return path.join(this.root, safeName(id));
  }

  private workDir(id: string) {
    return path.join(this.dir(id), 'work');
  }

  async create(spec: SandboxSpec, ctx?: OpContext): Promise<VmInfo> {
    if (spec.template && spec.template !== 'default') {
      throw new BadSpecError(`unknown template '${spec.template}' for driver process; available: default`);
    }
    const dir = this.dir(spec.id);
    return this.locks.run(spec.id, async () => {
      // An attempt the server gave up on (cancelled) must not touch what its retry is using.
      ctx?.signal?.throwIfAborted();
      // A retry of create finds what an earlier attempt recorded and completes it.
      let record = await readRecord(dir);
      if (!record) {
        const limits = resolveLimits(spec.id, spec.limits, this.defaults);
        this.requireHostSupport(
          spec.id,
          this.mode,
          this.mode === 'bubblewrap' && this.network ? 'slirp4netns' : 'none',
          limits.diskMiB,
        );
        record = this.newRecord(spec, limits);
        await mkdir(this.workDir(spec.id), { recursive: true, mode: 0o711 });
        await chmod(dir, 0o711);
        // Record first: a worker that dies right after starting anything leaves a sandbox that
        // list() still finds and destroy() can still remove (cgroup, mount, image, processes).
        await writeRecord(dir, record);
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
          ? { image: path.join(this.dir(spec.id), 'workspace.ext4'), sizeMiB: limits.diskMiB }
          : undefined,
    };
    record.isolation = describeSandbox(record, this.cgroups.version === null ? this.cgroups.reason : null);
    return record;
  }

  /** Fails closed, before anything is made, when this host cannot confine a sandbox as required. */
  private requireHostSupport(
    id: string,
    mode: IsolationMode,
    network: SandboxRecord['network'],
    diskMiB: number,
  ): void {
    if (mode === 'bubblewrap' && !this.bwrap) {
      throw new IsolationUnavailableError(
        `sandbox ${id}: bubblewrap (bwrap) is not installed, and process sandboxes require it: install it ` +
          `(Debian: apt-get install bubblewrap), ` +
          'or opt out of isolation explicitly with HOURGLASS_PROCESS_ISOLATION=none',
      );
    }
    if (network === 'slirp4netns' && !this.slirp) {
      throw new IsolationUnavailableError(
        `sandbox ${id}: network is on (HOURGLASS_PROCESS_NETWORK=1) but slirp4netns is not installed, and a ` +
          `sandbox never shares the host's network: ` +
          'install it (Debian: apt-get install slirp4netns) or set HOURGLASS_PROCESS_NETWORK=0',
      );
    }
    if (network === 'slirp4netns' && !this.iptablesRestore) {
      throw new IsolationUnavailableError(
        `sandbox ${id}: network is on, and its egress filter (internet only: no private ranges, no host ` +
          `addresses) needs ` +
          'iptables-restore: install it (Debian: apt-get install iptables) or set HOURGLASS_PROCESS_NETWORK=0',
      );
    }
    if (diskMiB > 0 && this.loopUnavailable) {
      throw new IsolationUnavailableError(
        `sandbox ${id}: its ${diskMiB} MiB workspace quota needs a loop-mounted ext4 image, and ` +
          `${this.loopUnavailable}; ` +
          'fix that, or run without workspace quotas explicitly with HOURGLASS_PROCESS_DISK_MIB=0',
      );
    }
  }

  /**
   * A sandbox is served the way it was made, not the way this worker would make one now; one made
   * without isolation is refused where isolation is required. `starting` also needs what a start
   * uses (slirp4netns, loop mounts); running a command needs only bwrap.
   */
  private requireServable(r: SandboxRecord, starting: boolean): void {
    if (r.mode === 'none' && this.mode === 'bubblewrap') {
      throw new IsolationUnavailableError(
        `sandbox ${r.id} was created without isolation (HOURGLASS_PROCESS_ISOLATION=none) and this worker ` +
          `requires bubblewrap: ` +
          'it will not start it or run commands in it. Destroy it, or serve it from a worker with ' +
          'HOURGLASS_PROCESS_ISOLATION=none',
      );
    }
    if (starting) this.requireHostSupport(r.id, r.mode, r.network, r.workspace?.sizeMiB ?? 0);
    else this.requireHostSupport(r.id, r.mode, 'none', 0);
  }

  /** Makes the sandbox whole: cgroup with its limits, workspace mounted, holder and network running. Idempotent. */
  private async bringUp(r: SandboxRecord): Promise<void> {
    this.requireServable(r, true);
    if (r.cgroup) await ensureCgroup(r.cgroup, r.limits, this.hostPidsCap);
    const work = this.workDir(r.id);
    await mkdir(work, { recursive: true });
    // The directory under the workspace mount; without a quota it is the workspace itself.
    if (!r.workspace && process.getuid?.() === 0) await chown(work, SANDBOX_UID, SANDBOX_UID);
    if (r.mode === 'bubblewrap') {
      if (!(r.holder && (await isAlive(r.holder)))) await this.startHolder(r);
      if (r.workspace && !(await workspaceMountedIn(r.holder!.pid))) await this.mountWorkspace(r);
      if (r.network === 'slirp4netns' && !(r.slirp && (await isAlive(r.slirp)))) await this.startNetwork(r);
      return;
    }
    if (r.workspace) await this.workspaces.mountOnHost(r.workspace, work);
    if (r.stopped) {
      r.stopped = false;
      await writeRecord(this.dir(r.id), r);
    }
  }

  /** Starts `bwrap … sleep infinity` detached, so the sandbox outlives the worker process. */
  private async startHolder(r: SandboxRecord): Promise<void> {
    const dir = this.dir(r.id);
    const infoPath = path.join(dir, 'bwrap-info.json');
    const readyPath = path.join(dir, 'holder-ready');
    await this.killProcesses(r); // strays from a create that died half-way: one holder per sandbox
    await rm(infoPath, { force: true });
    await rm(readyPath, { force: true });
    let resolvConf: { source: string; target: string } | undefined;
    if (r.network === 'slirp4netns') {
      resolvConf = { source: path.join(dir, 'resolv.conf'), target: resolvConfTarget() };
      await writeFile(resolvConf.source, RESOLV_CONF);
    }
    const argv = launchArgv(
      {
        joinCgroups: r.cgroup ? cgroupProcsFiles(r.cgroup) : [],
        open: [
          { fd: SECCOMP_FD, file: await this.seccompFilterFile(), mode: 'read' },
          { fd: INFO_FD, file: infoPath, mode: 'write' },
          { fd: READY_FD, file: readyPath, mode: 'write' },
        ],
      },
      // A record from before /tmp was limited gets the default size (tighter than it had, never looser).
      [
        this.bwrap!,
        ...holderBwrapArgs({
          workDir: this.workDir(r.id),
          tmpMiB: r.limits.tmpMiB ?? DEFAULT_LIMITS.tmpMiB,
          resolvConf,
        }),
      ],
    );
    const logPath = path.join(dir, 'holder.log');
    let exited: string | null = null;
    await spawnDetached(
      { file: argv[0]!, args: argv.slice(1), env: { PATH: TOOLS_PATH }, logFile: logPath },
      (how) => (exited = how),
    );
    const holder = await recordProcess(await waitForHolder(r.id, infoPath, readyPath, logPath, () => exited, 10_000));
    try {
      await writeRecord(dir, { ...r, holder, slirp: undefined });
    } catch (err) {
      // Destroyed meanwhile (a start racing a destroy): the holder must not outlive its record.
      await signalIfOurs(holder, 'SIGKILL');
      throw err;
    }
    r.holder = holder;
    r.slirp = undefined;
  }

  /** Mounts the workspace inside the holder's mount namespace; the loop device is recorded first. */
  private async mountWorkspace(r: SandboxRecord): Promise<void> {
    // Said before attaching: a worker that dies before recording the device leaves destroy a
    // reason to search every loop device for the image (too slow to do on every destroy).
    r.attachingLoop = true;
    await writeRecord(this.dir(r.id), r);
    const loop = await this.workspaces.attach(r.workspace!, r.loop);
    r.loop = loop;
    r.attachingLoop = undefined;
    await writeRecord(this.dir(r.id), r);
    await this.workspaces.mountInSandbox(r.workspace!, loop, r.holder!.pid);
  }

  private async startNetwork(r: SandboxRecord): Promise<void> {
    await this.killSlirps(r);
    // Filter first: there is no route out until slirp4netns configures tap0.
    if (r.egressAllow) await applyEgressRules(this.iptablesRestore ?? 'iptables-restore', r.holder!.pid, r.egressAllow);
    const slirp = await startSlirp({
      slirp: this.slirp!,
      holderPid: r.holder!.pid,
      sandboxDir: this.dir(r.id),
      joinCgroups: r.cgroup ? cgroupProcsFiles(r.cgroup) : [],
    });
    r.slirp = slirp;
    try {
      await writeRecord(this.dir(r.id), r);
    } catch (err) {
      await signalIfOurs(slirp, 'SIGKILL');
      throw err;
    }
  }

  /** The compiled filter, written once per driver instance (bwrap reads it from a descriptor). */
  private seccompFilterFile(): Promise<string> {
    this.seccompFile ??= (async () => {
      const file = path.join(this.assets, 'seccomp', 'sandbox.bpf');
      await mkdir(path.dirname(file), { recursive: true });
      const partial = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(partial, sandboxSeccompFilter());
      await rename(partial, file);
      return file;
    })();
    this.seccompFile.catch(() => (this.seccompFile = undefined));
    return this.seccompFile;
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
    const r = await readRecord(this.dir(id));
    if (!r) throw new NotFoundError(id);
    this.requireServable(r, false);
    // HOME is the workspace, where commands start: the one place uid 65534 may write (contract.ts).
    const plan = planExec(id, req, r.mode === 'bubblewrap' ? '/work' : this.workDir(id));
    const { command, hostEnv } = commandWithEnv(plan.env, plan.argv);
    if (r.cgroup && !(await cgroupExists(r.cgroup))) {
      throw new BusyError(
        `sandbox ${id} is not running: its cgroup ${sandboxCgroupDirs(r.cgroup)[0]} is gone (host restarted?); ` +
          `start it first`,
      );
    }
    const joinCgroups = r.cgroup ? cgroupProcsFiles(r.cgroup) : [];
    const asSandboxUser = process.getuid?.() === 0 ? dropPrivilegesArgs() : [];

    if (r.mode === 'none') {
      if (r.stopped) throw new BusyError(`sandbox ${id} is stopped; start it first`);
      // No namespace holds the mount here: a workspace gone (host restarted) must not become an unlimited directory.
      if (r.workspace && !(await isMounted(this.workDir(id)))) {
        throw new BusyError(
          `sandbox ${id} is not running: its workspace is not mounted (host restarted?); start it first`,
        );
      }
      const argv = launchArgv({ joinCgroups, oomScoreAdj: COMMAND_OOM_SCORE_ADJ }, [...asSandboxUser, ...command]);
      const env = { PATH: TOOLS_PATH, ...hostEnv };
      return runOnHost(argv, { cwd: this.workDir(id), env, timeoutMs: plan.timeoutMs, signal: ctx?.signal });
    }
    if (!r.holder || !(await isAlive(r.holder))) {
      throw new BusyError(`sandbox ${id} is not running (its namespace holder is gone); start it first`);
    }
    // Without its mount /work is the directory beneath it, which has no quota: fail closed.
    if (r.workspace && !(await workspaceMountedIn(r.holder.pid))) {
      throw new BusyError(`sandbox ${id}: its workspace is not mounted; start it again`);
    }
    // nsenter itself runs with a fixed environment (the caller's variables could otherwise preload
    // code into a root process on the host: they ride along only under a prefix); inside, bwrap
    // loads the seccomp filter, setpriv drops to the sandbox user, `env -i` sets the caller's
    // variables from the prefixed ones, and the launch script (contract.ts) starts the program.
    const argv = launchArgv(
      {
        joinCgroups,
        open: [{ fd: SECCOMP_FD, file: await this.seccompFilterFile(), mode: 'read' }],
        oomScoreAdj: COMMAND_OOM_SCORE_ADJ,
      },
      [
        'nsenter',
        '-t',
        String(r.holder.pid),
        '-a',
        '-r',
        '--',
        ...seccompWrapperArgs(this.bwrap ?? 'bwrap'),
        ...asSandboxUser,
        ...command,
      ],
    );
    return runOnHost(argv, { env: { PATH: TOOLS_PATH, ...hostEnv }, timeoutMs: plan.timeoutMs, signal: ctx?.signal });
  }

  /** Stop ends every process but keeps the directory, cgroup and workspace; start brings up a fresh namespace. */
  async stop(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const r = await readRecord(this.dir(id));
      if (!r) throw new NotFoundError(id);
      await this.killProcesses(r);
      r.holder = undefined;
      r.slirp = undefined;
      if (r.mode === 'none') r.stopped = true;
      await writeRecord(this.dir(id), r);
    });
  }

  async start(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const r = await readRecord(this.dir(id));
      if (!r) throw new NotFoundError(id);
      await this.bringUp(r);
    });
  }

  async destroy(id: string): Promise<{ existed: boolean }> {
    const dir = this.dir(id);
    return this.locks.run(id, async () => {
      const r = await readRecord(dir);
      const existed = r !== null || (await exists(dir));
      if (!existed) return { existed: false };
      await this.killProcesses(r, id);
      if (r?.cgroup) await removeCgroup(r.cgroup, id);
      // Never rm -rf through a mounted workspace: unmountFromHost() returns only once it is gone.
      await this.workspaces.unmountFromHost(this.workDir(id));
      if (r?.workspace && r.attachingLoop) await this.workspaces.releaseAnyLoop(r.workspace);
      await rm(dir, { recursive: true, force: true });
      return { existed: true };
    });
  }

  /**
   * Ends every process of the sandbox: slirp4netns, then the holder (SIGKILL to pid 1 of its pid
   * namespace: the kernel kills everything inside), then whatever is left in its cgroup (commands
   * of isolation none, launchers, strays of a create that died before recording them). Without a
   * cgroup, strays are found by their command lines. Then the workspace's loop device is released.
   */
  private async killProcesses(r: SandboxRecord | null, id = r!.id): Promise<void> {
    await this.killSlirps(r, id);
    if (r?.holder) await signalIfOurs(r.holder, 'SIGKILL');
    if (r?.cgroup && (await cgroupExists(r.cgroup))) {
      await emptyCgroup(r.cgroup, id);
    } else {
      const strays = await this.straysByCommandLine(id);
      const pids = new Set(strays.map((p) => p.pid));
      // pid 1 of each namespace first (a bwrap whose parent is the outer bwrap), then the rest.
      for (const p of strays.filter((s) => pids.has(s.ppid))) await signalIfOurs(p, 'SIGKILL');
      for (const p of strays) if (!(await waitForExit(p, 2000))) await signalIfOurs(p, 'SIGKILL');
      for (const p of strays) {
        if (!(await waitForExit(p, 3000))) {
          throw new BusyError(`sandbox ${id}: pid ${p.pid} did not exit after SIGKILL`);
        }
      }
    }
    if (r?.holder && !(await waitForExit(r.holder, 5000, 5))) {
      throw new BusyError(`sandbox ${id}: holder pid ${r.holder.pid} did not exit after SIGKILL`);
    }
    // The workspace's loop device goes with the namespace, asynchronously; wait for it (detaching
    // it if it was never marked autoclear), so a start right after attaches a device of its own.
    if (r?.workspace && r.loop) {
      await this.workspaces.releaseLoop(r.workspace, r.loop);
      r.loop = undefined;
    }
  }

  private async killSlirps(r: SandboxRecord | null, id = r!.id): Promise<void> {
    if (!r?.slirp) return;
    await signalIfOurs(r.slirp, 'SIGKILL');
    if (!(await waitForExit(r.slirp, 3000, 5))) {
      throw new BusyError(`sandbox ${id}: slirp4netns pid ${r.slirp.pid} did not exit after SIGKILL`);
    }
  }

  /** bwrap processes binding this sandbox's work dir, and its slirp4netns (by argv[0]). */
  private async straysByCommandLine(id: string): Promise<ProcessInfo[]> {
    const work = this.workDir(id);
    const marker = slirpMarker(this.dir(id));
    const found = await findProcesses(
      (argv) => (argv[0]?.endsWith('bwrap') && argv.includes(work)) || argv[0] === marker,
    );
    return found.filter((p) => !p.exited);
  }

  async list(): Promise<VmInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const infos: VmInfo[] = [];
    for (const name of names) {
      const r = await readRecord(path.join(this.root, name));
      if (r && r.id === name) infos.push(await this.info(r));
    }
    return infos;
  }

  async describe(id: string): Promise<VmInfo | null> {
    const r = await readRecord(this.dir(id));
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
        dir: this.workDir(r.id),
        holderPid: r.holder?.pid,
        slirpPid: r.slirp?.pid,
        cgroups: r.cgroup ? sandboxCgroupDirs(r.cgroup) : [],
        workspaceImage: r.workspace?.image,
        labels: r.labels,
      },
    };
  }
}

export function createProcessHypervisor(settings: ProcessSettings, stateDir: string): Hypervisor {
  return new ProcessHypervisor({ ...settings, stateDir });
}

/** The holder's pid (bwrap's info) once its command says the sandbox is built. */
async function waitForHolder(
  id: string,
  infoPath: string,
  readyPath: string,
  logPath: string,
  exited: () => string | null,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited()) {
    try {
      const pid = JSON.parse(await readFile(infoPath, 'utf8'))['child-pid'];
      if (typeof pid === 'number' && (await readFile(readyPath, 'utf8')).startsWith('ready')) return pid;
    } catch {
      /* bwrap has not written them yet */
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const log = (await readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ');
  throw new BusyError(
    `sandbox ${id}: bubblewrap ${exited() ?? `was not ready within ${timeoutMs} ms`}: ${log || 'no output'} ` +
      `(${logPath})`,
  );
}

function hostPidsCap(): number | undefined {
  try {
    return Math.floor(Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) / 2) || undefined;
  } catch {
    return undefined;
  }
}

/** `bubblewrap 0.8.0` → `0.8.0`; null when it cannot say. */
function toolVersion(file: string): string | null {
  try {
    return execFileSync(file, ['--version'], { encoding: 'utf8', timeout: 5000 }).trim().split(/\s+/).pop() ?? null;
  } catch {
    return null;
  }
}

function definedFields<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Sandbox ids become directory and cgroup names: refuse anything that could escape them. */
function safeName(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new BadSpecError(`invalid sandbox id '${id}'`);
  return id;
}

const ENV_PREFIX = 'HOURGLASS_ENV_';

/**
 * The command behind `env -i`, and the environment to run the chain with. Values never appear in
 * an argv (any local user can read those in /proc): they travel in the environment under a prefix
 * no program acts on (an unprefixed LD_PRELOAD would run code in the root processes on the way),
 * and the last step, already the sandbox user, expands them back with `env -S 'NAME=${PREFIX_NAME}'`.
 */
function commandWithEnv(
  env: Record<string, string>,
  command: string[],
): { command: string[]; hostEnv: Record<string, string> } {
  const names = Object.keys(env);
  const hostEnv = Object.fromEntries(names.map((k) => [`${ENV_PREFIX}${k}`, env[k]!]));
  const assignments = names.map((k) => `${k}=\${${ENV_PREFIX}${k}}`).join(' ');
  return { command: ['env', '-i', '-S', assignments, ...command], hostEnv };
}
