// QEMU driver: one microVM per sandbox, controlled over QMP, commands through the guest agent.
//
// Everything needed to find a sandbox again lives in <stateDir>/qemu/<id>/ (vm.json, the qcow2
// overlay, the QMP and agent sockets), and QEMU runs daemonized in its own session, so sandboxes
// outlive the worker and a restarted worker picks them up from disk.
//
// stop/start are QMP stop/cont: the vCPUs pause, guest memory and the QEMU process stay. A VM
// whose QEMU process has exited (guest panic, host reboot) reports 'stopped'; start() boots it
// again from its overlay.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, existsSync, readFileSync } from 'node:fs';
import { access, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { BadSpecError, BusyError, HypervisorError, NotFoundError, NotReadyError } from './errors';
import { resolveGuestImage, type GuestImage } from './guest-image';
import { QgaClient } from './qga';
import { QmpClient } from './qmp';
import type { ExecRequest, ExecResult, Hypervisor, OpContext, SandboxSpec, VmInfo, VmState } from './types';

export type Accel = 'kvm' | 'tcg';

export interface QemuConfig {
  /** The driver's own directory (<stateDir>/qemu). */
  dir: string;
  binary: string;
  accel: 'auto' | Accel;
  memoryMiB: number;
  cpus: number;
  maxConcurrentBoots: number;
  /** undefined = resolveGuestImage's default. */
  imageDir?: string;
  kernelArgs: string;
  kvmProbeTimeoutMs: number;
  /** How long a booting VM may hold a boot slot before it is assumed stuck. */
  bootSlotTimeoutMs: number;
  defaultExecTimeoutSeconds: number;
  /** How long an unused guest-agent connection stays open. */
  agentIdleMs: number;
}

const AGENT_PORT = 'org.qemu.guest_agent.0';
const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const MIN_MEMORY_MIB = 96; // 64 MiB hangs while unpacking the initramfs
const UNIX_SOCKET_PATH_MAX = 107;
const GUEST_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

export function createQemuHypervisor(env: NodeJS.ProcessEnv, stateDir: string): Hypervisor {
  const accel = env.HOURGLASS_QEMU_ACCEL || 'auto';
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') {
    throw new BadSpecError(`HOURGLASS_QEMU_ACCEL must be auto, kvm or tcg, not ${accel}`);
  }
  const tscKhz = positiveInt(env, 'HOURGLASS_QEMU_TSC_KHZ', hostTscKhz());
  // Without a given TSC frequency, guests booting side by side under TCG hang in PIT calibration.
  const kernelArgs = `console=ttyS0 quiet panic=-1 tsc_early_khz=${tscKhz} tsc=reliable ${env.HOURGLASS_QEMU_KERNEL_ARGS ?? ''}`;
  return new QemuHypervisor({
    dir: join(resolve(stateDir), 'qemu'),
    binary: env.HOURGLASS_QEMU_BINARY || 'qemu-system-x86_64',
    accel,
    memoryMiB: positiveInt(env, 'HOURGLASS_QEMU_MEMORY_MIB', 128),
    cpus: positiveInt(env, 'HOURGLASS_QEMU_CPUS', 1),
    maxConcurrentBoots: positiveInt(env, 'HOURGLASS_QEMU_MAX_CONCURRENT_BOOTS', availableParallelism()),
    imageDir: env.HOURGLASS_GUEST_IMAGE_DIR || undefined,
    kernelArgs: kernelArgs.trim(),
    kvmProbeTimeoutMs: positiveInt(env, 'HOURGLASS_QEMU_KVM_PROBE_TIMEOUT_MS', 8_000),
    bootSlotTimeoutMs: positiveInt(env, 'HOURGLASS_QEMU_BOOT_SLOT_TIMEOUT_MS', 120_000),
    defaultExecTimeoutSeconds: positiveInt(env, 'HOURGLASS_QEMU_EXEC_TIMEOUT_S', 600),
    agentIdleMs: positiveInt(env, 'HOURGLASS_QEMU_AGENT_IDLE_MS', 30_000),
  });
}

/** What vm.json holds: enough to find, reboot and identify the VM from any worker. */
interface VmRecord {
  id: string;
  createdAt: string;
  template: string;
  labels: Record<string, string>;
  memoryMiB: number;
  cpus: number;
  /** Pinned at create: the overlay backs onto this rootfs. */
  image: GuestImage;
  accel?: Accel;
  process?: QemuProcess;
}

/** A pid alone is not an identity (pids are reused); pid + start time is. */
interface QemuProcess {
  pid: number;
  startTime: string;
  launchedAt: string;
}

type BootOutcome = 'ready' | 'exited' | 'timeout' | 'aborted';

export class QemuHypervisor implements Hypervisor {
  readonly name = 'qemu';
  private readonly bootSlots: Semaphore;
  private readonly locks = new KeyedMutex();
  private readonly qmpLocks = new KeyedMutex();
  private readonly bootWatchers = new Map<string, { done: Promise<BootOutcome>; abort: AbortController }>();
  private readonly agents = new Map<string, AgentConnection>();

  constructor(private readonly cfg: QemuConfig) {
    this.bootSlots = new Semaphore(cfg.maxConcurrentBoots);
  }

  async create(spec: SandboxSpec, ctx: OpContext = {}): Promise<VmInfo> {
    const id = spec.id;
    checkId(id);
    if (spec.template !== undefined && spec.template !== 'default') {
      throw new BadSpecError(`sandbox ${id}: unknown qemu template "${spec.template}" (only "default")`);
    }
    const memoryMiB = spec.memoryMiB ?? this.cfg.memoryMiB;
    if (memoryMiB < MIN_MEMORY_MIB) throw new BadSpecError(`sandbox ${id}: memoryMiB must be at least ${MIN_MEMORY_MIB} (got ${memoryMiB})`);
    const cpus = spec.cpus ?? this.cfg.cpus;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new BadSpecError(`sandbox ${id}: cpus must be 1..64 (got ${cpus})`);
    const p = this.paths(id);
    const longest = p.qmp.length > p.agent.length ? p.qmp : p.agent;
    if (longest.length > UNIX_SOCKET_PATH_MAX) {
      throw new BadSpecError(`sandbox ${id}: socket path ${longest} is longer than ${UNIX_SOCKET_PATH_MAX} bytes; use a shorter state dir`);
    }
    if (p.dir.includes(',')) throw new BadSpecError(`sandbox ${id}: state dir ${p.dir} contains a comma, which QEMU options cannot take`);

    return this.locks.run(id, async () => {
      let rec = await this.readRecord(id);
      if (rec?.process && (await isRunning(rec.process))) return this.info(rec); // a retry: already made
      if (!rec) {
        let image: GuestImage;
        try {
          image = resolveGuestImage(this.cfg.imageDir);
        } catch (err) {
          throw new BadSpecError(`sandbox ${id}: ${errorText(err)}`);
        }
        rec = { id, createdAt: new Date().toISOString(), template: spec.template ?? 'default', labels: spec.labels, memoryMiB, cpus, image };
        await mkdir(p.dir, { recursive: true });
        await this.writeRecord(rec);
      }
      if (!existsSync(p.overlay)) await this.createOverlay(rec, ctx);
      ctx.progress?.(`sandbox ${id}: overlay ready`);
      await this.boot(rec, ctx);
      return this.info(rec);
    });
  }

  async waitReady(id: string, timeoutMs: number, ctx: OpContext = {}): Promise<void> {
    const rec = await this.requireRecord(id);
    const started = Date.now();
    const deadline = started + timeoutMs;
    const stopBeat = heartbeat(ctx, () => `sandbox ${id}: waiting for the guest agent (${Math.round((Date.now() - started) / 1000)} s)`);
    try {
      let outcome: BootOutcome = 'timeout';
      // This worker is already watching the boot: share its answer rather than compete for the socket.
      const watcher = this.bootWatchers.get(id);
      if (watcher) outcome = await raceDeadline(watcher.done, deadline, ctx.signal);
      if (outcome !== 'ready' && outcome !== 'exited' && Date.now() < deadline) {
        outcome = await this.waitForAgent(rec, deadline, ctx.signal);
      }
      if (outcome === 'ready') return;
      ctx.signal?.throwIfAborted();
      const why = outcome === 'exited' ? 'the QEMU process exited' : `the guest agent did not answer on ${this.paths(id).agent}`;
      const status = outcome === 'exited' ? '' : ` (QMP status ${await this.qmpStatus(rec).catch(() => 'unknown')})`;
      throw new NotReadyError(id, timeoutMs, `${why}${status}; console: ${await this.consoleTail(id)}`);
    } finally {
      stopBeat();
    }
  }

  async exec(id: string, req: ExecRequest, ctx: OpContext = {}): Promise<ExecResult> {
    if (req.command.length === 0) throw new BadSpecError(`sandbox ${id}: exec needs a command`);
    const rec = await this.requireRunning(id);
    // A paused guest would leave the agent request hanging until it times out: say so at once.
    const status = await this.qmpStatus(rec);
    if (status === 'paused') throw new BusyError(`sandbox ${id} is stopped (QMP status paused); start it before exec`);
    const timeoutSeconds = req.timeoutSeconds ?? this.cfg.defaultExecTimeoutSeconds;
    // qemu-ga replaces the environment when given one, so PATH and HOME must come along.
    const env = Object.entries({ PATH: GUEST_PATH, HOME: '/root', ...req.env }).map(([k, v]) => `${k}=${v}`);
    const started = Date.now();
    const result = await this.withAgent(id, (agent) =>
      agent.run(req.command, { env, timeoutMs: timeoutSeconds * 1000, signal: ctx.signal }),
    );
    return { ...result, durationMs: Date.now() - started };
  }

  async stop(id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const rec = await this.requireRunning(id);
      await this.withQmp(rec, (qmp) => qmp.stop());
    });
  }

  async start(id: string, ctx: OpContext = {}): Promise<void> {
    await this.locks.run(id, async () => {
      const rec = await this.requireRecord(id);
      if (rec.process && (await isRunning(rec.process))) {
        await this.withQmp(rec, (qmp) => qmp.cont());
      } else {
        await this.boot(rec, ctx); // QEMU is gone: boot again from the overlay
      }
    });
  }

  async destroy(id: string): Promise<{ existed: boolean }> {
    if (!SANDBOX_ID.test(id)) return { existed: false };
    return this.locks.run(id, async () => {
      const p = this.paths(id);
      if (!existsSync(p.dir)) return { existed: false };
      this.bootWatchers.get(id)?.abort.abort();
      const agent = this.agents.get(id);
      if (agent) this.dropAgent(id, agent);

      const rec = await this.readRecord(id);
      const proc = rec?.process ?? (await this.processFromPidfile(id)); // a launch that never got recorded
      if (proc && (await isRunning(proc))) {
        if (rec) await this.withQmp(rec, (qmp) => qmp.quit({ timeoutMs: 2_000 })).catch(() => undefined);
        if (!(await waitForExit(proc, 3_000))) {
          if (await isRunning(proc)) killQuietly(proc.pid);
          if (!(await waitForExit(proc, 3_000))) {
            throw new HypervisorError(`sandbox ${id}: QEMU pid ${proc.pid} survived SIGKILL`, 'destroy_failed');
          }
        }
      }
      await rm(p.dir, { recursive: true, force: true });
      return { existed: true };
    });
  }

  async list(): Promise<VmInfo[]> {
    const entries = await readdir(this.cfg.dir, { withFileTypes: true }).catch(() => []);
    const ids = entries.filter((e) => e.isDirectory() && SANDBOX_ID.test(e.name)).map((e) => e.name);
    const infos = await Promise.all(ids.map((id) => this.describe(id)));
    return infos.filter((i): i is VmInfo => i !== null);
  }

  async describe(id: string): Promise<VmInfo | null> {
    if (!SANDBOX_ID.test(id) || !existsSync(this.paths(id).dir)) return null;
    const rec = await this.readRecord(id);
    if (!rec) {
      // Created as far as the directory: still ours, so the reaper can destroy it.
      return { id, driver: this.name, state: 'unknown', isolation: 'qemu', details: { dir: this.paths(id).dir, phase: 'creating' } };
    }
    return this.info(rec);
  }

  async close(): Promise<void> {
    for (const watcher of this.bootWatchers.values()) watcher.abort.abort();
    await Promise.all([...this.bootWatchers.values()].map((w) => w.done));
    for (const [id, agent] of this.agents) this.dropAgent(id, agent);
  }

  // ---- boot ----

  private async boot(rec: VmRecord, ctx: OpContext): Promise<void> {
    const accel = await this.chooseAccel(rec.image, ctx);
    const stopBeat = heartbeat(ctx, () => `sandbox ${rec.id}: waiting for a boot slot (${this.bootSlots.waiting} queued)`);
    let release: () => void;
    try {
      release = await this.bootSlots.acquire(ctx.signal);
    } finally {
      stopBeat();
    }
    try {
      rec.accel = accel;
      rec.process = await this.launch(rec.id, rec, accel);
      await this.writeRecord(rec);
    } catch (err) {
      release();
      throw err;
    }
    this.watchBoot(rec, release);
  }

  /** Holds the boot slot until the guest answers (TCG boots are CPU-bound), then lets the next one go. */
  private watchBoot(rec: VmRecord, release: () => void): void {
    const abort = new AbortController();
    const entry = {
      abort,
      done: this.waitForAgent(rec, Date.now() + this.cfg.bootSlotTimeoutMs, abort.signal)
        .catch((): BootOutcome => 'aborted')
        .finally(() => {
          release();
          if (this.bootWatchers.get(rec.id) === entry) this.bootWatchers.delete(rec.id);
        }),
    };
    this.bootWatchers.set(rec.id, entry);
  }

  private async launch(id: string, rec: VmRecord, accel: Accel): Promise<QemuProcess> {
    const p = this.paths(id);
    await Promise.all([p.qmp, p.agent, p.pidfile].map((f) => rm(f, { force: true })));
    const args = qemuArgs({
      name: `hourglass-${id}`,
      accel,
      memoryMiB: rec.memoryMiB,
      cpus: rec.cpus,
      image: rec.image,
      kernelArgs: this.cfg.kernelArgs,
      console: p.console,
      qmp: p.qmp,
      agent: p.agent,
      disk: p.overlay,
      pidfile: p.pidfile,
    });
    const code = await runDaemonizing(this.cfg.binary, args, p.log);
    if (code !== 0) {
      // Another worker may have launched this very VM: QEMU locks the pidfile and the overlay.
      const other = await this.processFromPidfile(id);
      if (other && (await isRunning(other))) return other;
      throw new HypervisorError(`sandbox ${id}: QEMU failed to start (exit ${code}): ${await tail(p.log)}`, 'launch_failed');
    }
    const proc = await this.processFromPidfile(id);
    if (!proc) throw new HypervisorError(`sandbox ${id}: QEMU started but exited at once: ${await tail(p.log)}`, 'launch_failed');
    return proc;
  }

  private async createOverlay(rec: VmRecord, ctx: OpContext): Promise<void> {
    const p = this.paths(rec.id);
    // Under a temporary name first: a half-made overlay must never pass for a good one.
    const tmp = `${p.overlay}.tmp-${randomBytes(4).toString('hex')}`;
    ctx.progress?.(`sandbox ${rec.id}: creating overlay on ${rec.image.rootfs}`);
    const code = await runToLog('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', rec.image.rootfs, '-F', 'qcow2', tmp], p.log);
    if (code !== 0) {
      await rm(tmp, { force: true });
      throw new HypervisorError(`sandbox ${rec.id}: qemu-img create failed (exit ${code}): ${await tail(p.log)}`, 'overlay_failed');
    }
    await rename(tmp, p.overlay);
  }

  /** 'ready' once the agent syncs and runs a command; 'exited' as soon as QEMU is gone. */
  private async waitForAgent(rec: VmRecord, deadline: number, signal?: AbortSignal): Promise<BootOutcome> {
    for (;;) {
      if (signal?.aborted) return 'aborted';
      const fresh = await this.readRecord(rec.id);
      if (!fresh?.process || !(await isRunning(fresh.process))) return 'exited';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      const attemptMs = Math.min(1_000, left);
      try {
        await this.agentAnswers(rec.id, attemptMs, signal);
        return 'ready';
      } catch {
        await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
      }
    }
  }

  /** One readiness attempt: the agent syncs and runs a command. Uses the shared connection if there is one. */
  private async agentAnswers(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.agents.has(id)) {
      // A second connection would only queue behind the open one.
      await this.withAgent(id, (agent) => agent.run(['true'], { timeoutMs }));
      return;
    }
    let client: QgaClient | undefined = await QgaClient.connect(this.paths(id).agent, { timeoutMs });
    try {
      await client.sync({ timeoutMs, signal });
      await client.run(['true'], { timeoutMs });
      this.adoptAgent(id, client); // the first exec needs no reconnect
      client = undefined;
    } finally {
      client?.close();
    }
  }

  // ---- KVM or TCG ----

  private async chooseAccel(image: GuestImage, ctx: OpContext): Promise<Accel> {
    if (this.cfg.accel !== 'auto') return this.cfg.accel;
    let probe = kvmProbes.get(this.cfg.binary);
    if (!probe) {
      probe = this.probeKvm(image, ctx).then((works) => (works ? 'kvm' : 'tcg'));
      kvmProbes.set(this.cfg.binary, probe);
    }
    return probe;
  }

  /**
   * /dev/kvm can exist and still hang (nested virtualization): the only honest test is to boot
   * the real guest under KVM and see the agent answer. Remembered on disk until the host reboots.
   */
  private async probeKvm(image: GuestImage, ctx: OpContext): Promise<boolean> {
    if (!(await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false))) return false;
    const cacheFile = join(this.cfg.dir, 'kvm-probe.json');
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const cached = await readJson<{ bootId: string; binary: string; kvm: boolean }>(cacheFile);
    if (cached && cached.bootId === bootId && cached.binary === this.cfg.binary) return cached.kvm;

    ctx.progress?.('probing whether KVM works');
    await mkdir(this.cfg.dir, { recursive: true });
    const dir = await mkdtemp(join(this.cfg.dir, '.kvm-probe-'));
    const files = { console: join(dir, 'console.log'), qmp: join(dir, 'qmp.sock'), agent: join(dir, 'qga.sock'), pidfile: join(dir, 'qemu.pid') };
    let proc: QemuProcess | null = null;
    let works = false;
    try {
      const args = qemuArgs({ name: 'hourglass-kvm-probe', accel: 'kvm', memoryMiB: this.cfg.memoryMiB, cpus: 1, image, kernelArgs: this.cfg.kernelArgs, ...files });
      if ((await runDaemonizing(this.cfg.binary, args, join(dir, 'qemu.log'))) === 0) {
        proc = await readPidfile(files.pidfile);
        const deadline = Date.now() + this.cfg.kvmProbeTimeoutMs;
        while (!works && Date.now() < deadline && proc && (await isRunning(proc))) {
          const client = await QgaClient.connect(files.agent, { timeoutMs: 1_000 }).catch(() => null);
          works = (await client?.sync({ timeoutMs: 1_000 }).then(() => true, () => false)) ?? false;
          client?.close();
          if (!works) await sleep(100);
        }
      }
    } finally {
      if (proc && (await isRunning(proc))) killQuietly(proc.pid);
      if (proc) await waitForExit(proc, 3_000);
      await rm(dir, { recursive: true, force: true });
    }
    await writeJsonAtomic(cacheFile, { bootId, binary: this.cfg.binary, kvm: works, probedAt: new Date().toISOString() });
    return works;
  }

  // ---- state on disk ----

  private paths(id: string) {
    const dir = join(this.cfg.dir, id);
    return {
      dir,
      record: join(dir, 'vm.json'),
      overlay: join(dir, 'overlay.qcow2'),
      qmp: join(dir, 'qmp.sock'),
      agent: join(dir, 'qga.sock'),
      pidfile: join(dir, 'qemu.pid'),
      console: join(dir, 'console.log'),
      log: join(dir, 'qemu.log'),
    };
  }

  private async readRecord(id: string): Promise<VmRecord | null> {
    return readJson<VmRecord>(this.paths(id).record);
  }

  private async writeRecord(rec: VmRecord): Promise<void> {
    await writeJsonAtomic(this.paths(rec.id).record, rec);
  }

  private async requireRecord(id: string): Promise<VmRecord> {
    checkId(id);
    const rec = await this.readRecord(id);
    if (!rec) throw new NotFoundError(id, existsSync(this.paths(id).dir) ? 'still being created' : 'no such qemu sandbox');
    return rec;
  }

  private async requireRunning(id: string): Promise<VmRecord> {
    const rec = await this.requireRecord(id);
    if (!rec.process || !(await isRunning(rec.process))) {
      throw new HypervisorError(`sandbox ${id}: its QEMU process is not running (start it to boot again)`, 'not_running');
    }
    return rec;
  }

  /** QEMU writes the pidfile itself; it only counts if that process's command line names this sandbox. */
  private async processFromPidfile(id: string): Promise<QemuProcess | null> {
    const proc = await readPidfile(this.paths(id).pidfile);
    if (!proc) return null;
    const cmdline = await readFile(`/proc/${proc.pid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.includes(this.paths(id).dir) ? proc : null;
  }

  private async info(rec: VmRecord): Promise<VmInfo> {
    const p = this.paths(rec.id);
    const alive = rec.process ? await isRunning(rec.process) : false;
    let state: VmState = 'unknown';
    let qmpStatus: string | undefined;
    if (alive) {
      qmpStatus = await this.qmpStatus(rec).catch(() => undefined);
      state = qmpStatus === 'running' ? 'running' : qmpStatus === 'paused' ? 'stopped' : 'unknown';
    } else if (rec.process) {
      state = 'stopped'; // QEMU exited; start() boots it again
    }
    return {
      id: rec.id,
      driver: this.name,
      state,
      isolation: `qemu-${rec.accel ?? 'unknown'}`,
      details: {
        dir: p.dir,
        pid: rec.process?.pid,
        process: alive ? 'running' : rec.process ? 'exited' : 'never started',
        qmpStatus,
        accel: rec.accel,
        memoryMiB: rec.memoryMiB,
        cpus: rec.cpus,
        template: rec.template,
        labels: rec.labels,
        createdAt: rec.createdAt,
        overlay: p.overlay,
        qmpSocket: p.qmp,
        agentSocket: p.agent,
      },
    };
  }

  private async consoleTail(id: string): Promise<string> {
    return (await tail(this.paths(id).console)) || '(empty)';
  }

  // ---- sockets ----

  private async qmpStatus(rec: VmRecord): Promise<string> {
    return this.withQmp(rec, async (qmp) => (await qmp.queryStatus()).status);
  }

  /** QMP serves one client at a time: serialize this worker's uses per sandbox. */
  private async withQmp<T>(rec: VmRecord, fn: (qmp: QmpClient) => Promise<T>): Promise<T> {
    return this.qmpLocks.run(rec.id, async () => {
      let qmp: QmpClient;
      try {
        qmp = await QmpClient.connect(this.paths(rec.id).qmp, { timeoutMs: 5_000 });
      } catch (err) {
        throw new HypervisorError(`sandbox ${rec.id}: QMP unavailable: ${errorText(err)}`, 'qmp_error');
      }
      try {
        return await fn(qmp);
      } catch (err) {
        throw new HypervisorError(`sandbox ${rec.id}: ${errorText(err)}`, 'qmp_error');
      } finally {
        qmp.close();
      }
    });
  }

  /**
   * The agent's port serves one client at a time, so concurrent execs in this worker share one
   * connection. It stays open for agentIdleMs after the last use: after each host disconnect
   * qemu-ga naps 100 ms (its guard against spinning on virtio-serial), which would otherwise
   * add ~50 ms to every exec. Closed when idle so another worker can connect.
   */
  private async withAgent<T>(id: string, fn: (agent: QgaClient) => Promise<T>): Promise<T> {
    let entry = this.agents.get(id);
    if (entry && entry.users === 0 && (await entry.client.catch(() => null))?.closed !== false) {
      this.dropAgent(id, entry); // QEMU went away or the connection failed while idle
      entry = undefined;
    }
    if (!entry) {
      const agentPath = this.paths(id).agent;
      const client = QgaClient.connect(agentPath, { timeoutMs: 5_000 }).then(async (c) => {
        await c.sync({ timeoutMs: 5_000 }).catch((err: unknown) => (c.close(), Promise.reject(err)));
        return c;
      });
      client.catch(() => undefined); // awaited below; keeps an early failure from being "unhandled"
      entry = { client, users: 0 };
      this.agents.set(id, entry);
    }
    const shared = entry;
    clearTimeout(shared.idleTimer);
    shared.users++;
    try {
      return await fn(await shared.client);
    } catch (err) {
      // A failed request leaves the connection closed or out of step: later callers get a new one.
      if (this.agents.get(id) === shared) this.agents.delete(id);
      if (err instanceof Error && err.name === 'AbortError') throw err;
      throw new HypervisorError(`sandbox ${id}: guest agent: ${errorText(err)}`, 'agent_error');
    } finally {
      shared.users--;
      if (shared.users === 0) {
        if (this.agents.get(id) !== shared) {
          shared.client.then((c) => c.close(), () => undefined);
        } else {
          shared.idleTimer = setTimeout(() => this.dropAgent(id, shared), this.cfg.agentIdleMs);
          shared.idleTimer.unref(); // an idle connection must not keep the worker alive
        }
      }
    }
  }

  /** Keeps a synced connection as the idle shared one, unless one is already there. */
  private adoptAgent(id: string, client: QgaClient): void {
    if (this.agents.has(id)) return client.close();
    const entry: AgentConnection = { client: Promise.resolve(client), users: 0 };
    entry.idleTimer = setTimeout(() => this.dropAgent(id, entry), this.cfg.agentIdleMs);
    entry.idleTimer.unref();
    this.agents.set(id, entry);
  }

  private dropAgent(id: string, entry: AgentConnection): void {
    clearTimeout(entry.idleTimer);
    if (this.agents.get(id) === entry) this.agents.delete(id);
    entry.client.then((c) => c.close(), () => undefined);
  }
}

interface AgentConnection {
  client: Promise<QgaClient>;
  users: number;
  idleTimer?: NodeJS.Timeout;
}

// Probe results per QEMU binary, shared by every driver instance in this process.
const kvmProbes = new Map<string, Promise<Accel>>();

interface QemuArgs {
  name: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  image: GuestImage;
  kernelArgs: string;
  console: string;
  qmp: string;
  agent: string;
  pidfile: string;
  /** The sandbox's overlay; without one the guest runs from its initramfs (the KVM probe). */
  disk?: string;
}

function qemuArgs(a: QemuArgs): string[] {
  return [
    '-name', a.name,
    '-accel', a.accel,
    ...(a.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-M', 'microvm',
    '-m', String(a.memoryMiB),
    '-smp', String(a.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-no-reboot', // a guest reboot or panic ends QEMU instead of looping
    '-kernel', a.image.kernel,
    '-initrd', a.image.initrd,
    '-append', a.kernelArgs,
    '-serial', `file:${a.console}`,
    '-qmp', `unix:${a.qmp},server=on,wait=off`,
    '-device', 'virtio-serial-device',
    '-chardev', `socket,id=agent,path=${a.agent},server=on,wait=off`,
    '-device', `virtserialport,chardev=agent,name=${AGENT_PORT}`,
    ...(a.disk ? ['-drive', `file=${a.disk},if=none,id=root,format=qcow2`, '-device', 'virtio-blk-device,drive=root'] : []),
    // Daemonized: QEMU forks into its own session (the VM outlives the worker) and the parent
    // exits only once the sockets listen, with a non-zero code if startup failed.
    '-daemonize',
    '-pidfile', a.pidfile,
  ];
}

/** Runs QEMU with -daemonize and returns the foreground parent's exit code. */
async function runDaemonizing(binary: string, args: string[], logFile: string): Promise<number> {
  return runToLog(binary, args, logFile, 60_000);
}

async function runToLog(command: string, args: string[], logFile: string, timeoutMs = 60_000): Promise<number> {
  const log = await open(logFile, 'a');
  try {
    return await new Promise<number>((done) => {
      const child = spawn(command, args, { stdio: ['ignore', log.fd, log.fd], detached: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        void log.write(`${command}: ${err.message}\n`).finally(() => done(127));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        done(code ?? (signal ? 128 : 1));
      });
    });
  } finally {
    await log.close();
  }
}

async function readPidfile(file: string): Promise<QemuProcess | null> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const st = await procStat(pid);
  return st && st.state !== 'Z' ? { pid, startTime: st.startTime, launchedAt: new Date().toISOString() } : null;
}

/** State and start time (clock ticks since boot) from /proc/<pid>/stat, or null if no such pid. */
async function procStat(pid: number): Promise<{ state: string; startTime: string } | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!text) return null;
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', startTime: fields[19] ?? '' };
}

/** Same pid, same start time, not a zombie (a daemonized QEMU is reaped by init, maybe late). */
async function isRunning(proc: QemuProcess): Promise<boolean> {
  const st = await procStat(proc.pid);
  return st !== null && st.startTime === proc.startTime && st.state !== 'Z' && st.state !== 'X';
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // exited between the identity check and the kill
  }
}

async function waitForExit(proc: QemuProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isRunning(proc)) {
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
  return true;
}

async function readJson<T>(file: string): Promise<T | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, file);
}

async function tail(file: string, bytes = 600): Promise<string> {
  try {
    const size = (await stat(file)).size;
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(bytes, size));
      await fh.read(buf, 0, buf.length, Math.max(0, size - buf.length));
      return buf.toString('utf8').trim().replace(/\s*\n\s*/g, ' | ');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** The guest's TSC runs at the host's under TCG; telling the guest skips its calibration. */
function hostTscKhz(): number {
  try {
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    if (mhz) return Math.round(Number(mhz) * 1000);
  } catch {
    // not Linux /proc: fall through
  }
  return 2_300_000;
}

function checkId(id: string): void {
  if (!SANDBOX_ID.test(id)) throw new BadSpecError(`sandbox id ${JSON.stringify(id)} is not usable as a directory name (${SANDBOX_ID})`);
}

function positiveInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new BadSpecError(`${key} must be a positive integer, not ${raw}`);
  return n;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Calls ctx.progress every second (activities turn it into heartbeats); returns a stop function. */
function heartbeat(ctx: OpContext, detail: () => string): () => void {
  if (!ctx.progress) return () => undefined;
  const progress = ctx.progress;
  progress(detail());
  const timer = setInterval(() => progress(detail()), 1_000);
  return () => clearInterval(timer);
}

async function raceDeadline(outcome: Promise<BootOutcome>, deadline: number, signal?: AbortSignal): Promise<BootOutcome> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      outcome,
      new Promise<BootOutcome>((r) => (timer = setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())))),
      new Promise<BootOutcome>((r) => {
        onAbort = () => r('aborted');
        if (signal?.aborted) onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** Caps concurrent boots: under TCG each one burns a core for a few seconds. */
class Semaphore {
  private free: number;
  private readonly queue: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  get waiting(): number {
    return this.queue.length;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((granted, reject) => {
        const onGrant = () => {
          signal?.removeEventListener('abort', onAbort);
          granted();
        };
        const onAbort = () => {
          const i = this.queue.indexOf(onGrant);
          if (i >= 0) this.queue.splice(i, 1);
          reject(signal?.reason);
        };
        this.queue.push(onGrant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next(); // hand the slot straight over
      else this.free++;
    };
  }
}

/** One operation at a time per key (sandbox id), in this process. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tailPromise = result.catch(() => undefined);
    this.tails.set(key, tailPromise);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tailPromise) this.tails.delete(key);
    }
  }
}
