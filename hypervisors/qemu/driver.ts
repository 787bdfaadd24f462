// QEMU driver: one microVM per sandbox, controlled over QMP, commands through the guest agent.
//
// Everything needed to find a sandbox again lives in <stateDir>/qemu/<id>/ (vm.json, the qcow2
// overlay, the QMP and agent sockets), and QEMU runs daemonized in its own session, so sandboxes
// outlive the worker and a restarted worker picks them up from disk.
//
// stop/start are QMP stop/cont: the vCPUs pause, guest memory and the QEMU process stay. A VM
// whose QEMU process has exited (guest panic, host reboot) reports 'stopped'; start() boots it
// again from its overlay.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { errorText } from '../common/error-text';
import { BadSpecError, BusyError, HypervisorError, NotFoundError, NotReadyError } from '../errors';
import { tail } from '../common/file-tail';
import { runInGuest } from '../guest/exec';
import { planVmExec } from '../guest/vm-exec-plan';
import { resolveGuestImage, type GuestImage } from '../guest/image';
import { heartbeat } from '../common/heartbeat';
import { KeyedMutex } from '../common/keyed-mutex';
import { chooseAccel } from './kvm-probe';
import { isAlive, signalIfOurs, waitForExit } from '../common/proc-identity';
import { qgaCommand, qgaGuestAgent, qgaStreamingAgent, type QgaClient } from './qga';
import { QgaFiles } from '../guest/qga-files';
import { runStreamingInGuest } from '../guest/stream-exec';
import type { FileTransport } from '../guest/file-transport';
import { TransportFileSystem } from '../guest/sandbox-file-system';
import { QEMU_FILE_CHUNK_BYTES, qemuFileTransport } from './file-transport';
import { QmpClient } from './qmp';
import { AgentPool } from './agent-pool';
import { launchQemu } from './launch';
import { createOverlay } from './overlay';
import { raceDeadline, waitForAgent, type BootOutcome } from './readiness';
import { processFromPidfile, readRecord, sandboxPaths, writeRecord, type Accel, type VmRecord } from './state';
import { Semaphore } from '../common/semaphore';
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
  VmState,
} from '../types';
import type { QemuSettings } from '../../config/drivers';
import { VM_SANDBOX_ID } from '../common/vm-sandbox-id';

export type { Accel } from './state';

/** QemuSettings (config/drivers.ts) and the driver's directory under the state dir. */
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
  /** How long an unused guest-agent connection stays open. */
  agentIdleMs: number;
}

const MIN_MEMORY_MIB = 96; // 64 MiB hangs while unpacking the initramfs
const UNIX_SOCKET_PATH_MAX = 107;

export function createQemuHypervisor(settings: QemuSettings, stateDir: string): Hypervisor {
  return new QemuHypervisor({ ...settings, dir: join(resolve(stateDir), 'qemu') });
}

export class QemuHypervisor implements Hypervisor {
  readonly name = 'qemu';
  /** Files through the common layer (guest/sandbox-file-system.ts) over this driver's FileTransport. */
  readonly fileSystem: SandboxFileSystem = new TransportFileSystem(async (id) => this.fileTransport(id));
  /** Caps concurrent boots: under TCG each one burns a core for a few seconds. */
  private readonly bootSlots: Semaphore;
  private readonly locks = new KeyedMutex();
  private readonly qmpLocks = new KeyedMutex();
  private readonly bootWatchers = new Map<string, { done: Promise<BootOutcome>; abort: AbortController }>();
  private readonly agents: AgentPool;

  constructor(private readonly cfg: QemuConfig) {
    this.bootSlots = new Semaphore(cfg.maxConcurrentBoots);
    this.agents = new AgentPool((id) => this.paths(id).agent, cfg.agentIdleMs);
  }

  async create(spec: SandboxSpec, ctx: OpContext = {}): Promise<VmInfo> {
    const id = spec.id;
    checkId(id);
    if (spec.template !== undefined && spec.template !== 'default') {
      throw new BadSpecError(`sandbox ${id}: unknown qemu template "${spec.template}" (only "default")`);
    }
    const memoryMiB = spec.limits?.memoryMiB ?? this.cfg.memoryMiB;
    if (memoryMiB < MIN_MEMORY_MIB) {
      throw new BadSpecError(`sandbox ${id}: memoryMiB must be at least ${MIN_MEMORY_MIB} (got ${memoryMiB})`);
    }
    const cpus = spec.limits?.cpus ?? this.cfg.cpus;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) {
      throw new BadSpecError(`sandbox ${id}: cpus must be 1..64 (got ${cpus})`);
    }
    const p = this.paths(id);
    const longest = p.qmp.length > p.agent.length ? p.qmp : p.agent;
    if (longest.length > UNIX_SOCKET_PATH_MAX) {
      throw new BadSpecError(
        `sandbox ${id}: socket path ${longest} is longer than ${UNIX_SOCKET_PATH_MAX} bytes; use a shorter state dir`,
      );
    }
    if (p.dir.includes(',')) {
      throw new BadSpecError(`sandbox ${id}: state dir ${p.dir} contains a comma, which QEMU options cannot take`);
    }

    return this.locks.run(id, async () => {
      let rec = await this.readRecord(id);
      if (rec?.process && (await isAlive(rec.process))) return this.info(rec); // a retry: already made
      if (!rec) {
        let image: GuestImage;
        try {
          image = resolveGuestImage(this.cfg.imageDir);
        } catch (err) {
          throw new BadSpecError(`sandbox ${id}: ${errorText(err)}`);
        }
        rec = {
          id,
          createdAt: new Date().toISOString(),
          template: spec.template ?? 'default',
          labels: spec.labels,
          memoryMiB,
          cpus,
          image,
        };
        await mkdir(p.dir, { recursive: true });
        await this.writeRecord(rec);
      }
      if (!existsSync(p.overlay)) await createOverlay(p, rec, ctx);
      ctx.progress?.(`sandbox ${id}: overlay ready`);
      await this.boot(rec, ctx);
      return this.info(rec);
    });
  }

  async waitReady(id: string, timeoutMs: number, ctx: OpContext = {}): Promise<void> {
    const rec = await this.requireRecord(id);
    const started = Date.now();
    const deadline = started + timeoutMs;
    const stopBeat = heartbeat(
      ctx,
      () => `sandbox ${id}: waiting for the guest agent (${Math.round((Date.now() - started) / 1000)} s)`,
    );
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
      const why =
        outcome === 'exited' ? 'the QEMU process exited' : `the guest agent did not answer on ${this.paths(id).agent}`;
      const status = outcome === 'exited' ? '' : ` (QMP status ${await this.qmpStatus(rec).catch(() => 'unknown')})`;
      throw new NotReadyError(id, timeoutMs, `${why}${status}; console: ${await this.consoleTail(id)}`);
    } finally {
      stopBeat();
    }
  }

  async exec(id: string, req: ExecRequest, ctx: OpContext = {}): Promise<ExecResult> {
    const plan = planVmExec(id, req);
    return this.withRunningAgent(id, (agent) => runInGuest(qgaGuestAgent(agent), plan, ctx));
  }

  async execStream(id: string, req: StreamExecRequest, onOutput: OutputSink, ctx: OpContext = {}): Promise<ExecResult> {
    const plan = planVmExec(id, req);
    return this.withRunningAgent(id, (agent) => {
      const files = new QgaFiles(id, qgaCommand(agent), QEMU_FILE_CHUNK_BYTES);
      return runStreamingInGuest(qgaStreamingAgent(agent, files), plan, req.stdin, onOutput, ctx);
    });
  }

  /** What the common file layer needs of this sandbox (guest/file-transport.ts). */
  fileTransport(id: string): FileTransport {
    return qemuFileTransport(
      id,
      (fn) => this.withRunningAgent(id, fn),
      (command, opts = {}, ctx) => {
        const req = { command, timeoutSeconds: opts.timeoutSeconds };
        return opts.stdin ? this.execStream(id, { ...req, stdin: opts.stdin }, () => {}, ctx) : this.exec(id, req, ctx);
      },
    );
  }

  /** The sandbox's shared agent connection, once its QEMU runs and its vCPUs are not paused. */
  private async withRunningAgent<T>(id: string, fn: (agent: QgaClient) => Promise<T>): Promise<T> {
    const rec = await this.requireRunning(id);
    // A paused guest would leave the agent request hanging until it times out: say so at once.
    const status = await this.qmpStatus(rec);
    if (status === 'paused') throw new BusyError(`sandbox ${id} is stopped (QMP status paused); start it before exec`);
    return this.agents.use(id, fn);
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
      if (rec.process && (await isAlive(rec.process))) {
        await this.withQmp(rec, (qmp) => qmp.cont());
      } else {
        await this.boot(rec, ctx); // QEMU is gone: boot again from the overlay
      }
    });
  }

  async destroy(id: string): Promise<{ existed: boolean }> {
    if (!VM_SANDBOX_ID.test(id)) return { existed: false };
    return this.locks.run(id, async () => {
      const p = this.paths(id);
      if (!existsSync(p.dir)) return { existed: false };
      this.bootWatchers.get(id)?.abort.abort();
      this.agents.close(id);

      const rec = await this.readRecord(id);
      const proc = rec?.process ?? (await processFromPidfile(p)); // a launch that never got recorded
      if (proc && (await isAlive(proc))) {
        if (rec) await this.withQmp(rec, (qmp) => qmp.quit({ timeoutMs: 2_000 })).catch(() => undefined);
        if (!(await waitForExit(proc, 3_000, 10))) {
          await signalIfOurs(proc, 'SIGKILL');
          if (!(await waitForExit(proc, 3_000, 10))) {
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
    const ids = entries.filter((e) => e.isDirectory() && VM_SANDBOX_ID.test(e.name)).map((e) => e.name);
    const infos = await Promise.all(ids.map((id) => this.describe(id)));
    return infos.filter((i): i is VmInfo => i !== null);
  }

  async describe(id: string): Promise<VmInfo | null> {
    if (!VM_SANDBOX_ID.test(id) || !existsSync(this.paths(id).dir)) return null;
    const rec = await this.readRecord(id);
    if (!rec) {
      // Created as far as the directory: still ours, so the reaper can destroy it.
      return {
        id,
        driver: this.name,
        state: 'unknown',
        isolation: 'qemu',
        details: { dir: this.paths(id).dir, phase: 'creating' },
      };
    }
    return this.info(rec);
  }

  async close(): Promise<void> {
    for (const watcher of this.bootWatchers.values()) watcher.abort.abort();
    await Promise.all([...this.bootWatchers.values()].map((w) => w.done));
    this.agents.closeAll();
  }

  // ---- boot ----

  private async boot(rec: VmRecord, ctx: OpContext): Promise<void> {
    const accel = await chooseAccel(this.cfg, rec.image, ctx);
    const stopBeat = heartbeat(
      ctx,
      () => `sandbox ${rec.id}: waiting for a boot slot (${this.bootSlots.waiting} queued)`,
    );
    let release: () => void;
    try {
      release = await this.bootSlots.acquire(ctx.signal);
    } finally {
      stopBeat();
    }
    try {
      rec.accel = accel;
      rec.process = await launchQemu(this.cfg.binary, this.cfg.kernelArgs, this.paths(rec.id), rec, accel);
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

  private waitForAgent(rec: VmRecord, deadline: number, signal?: AbortSignal): Promise<BootOutcome> {
    return waitForAgent(rec.id, this.paths(rec.id), this.agents, deadline, signal);
  }

  // ---- state on disk ----

  private paths(id: string) {
    return sandboxPaths(this.cfg.dir, id);
  }

  private async readRecord(id: string): Promise<VmRecord | null> {
    return readRecord(this.paths(id));
  }

  private async writeRecord(rec: VmRecord): Promise<void> {
    await writeRecord(this.paths(rec.id), rec);
  }

  private async requireRecord(id: string): Promise<VmRecord> {
    checkId(id);
    const rec = await this.readRecord(id);
    if (!rec) {
      throw new NotFoundError(id, existsSync(this.paths(id).dir) ? 'still being created' : 'no such qemu sandbox');
    }
    return rec;
  }

  private async requireRunning(id: string): Promise<VmRecord> {
    const rec = await this.requireRecord(id);
    if (!rec.process || !(await isAlive(rec.process))) {
      throw new HypervisorError(
        `sandbox ${id}: its QEMU process is not running (start it to boot again)`,
        'not_running',
      );
    }
    return rec;
  }

  private async info(rec: VmRecord): Promise<VmInfo> {
    const p = this.paths(rec.id);
    const alive = rec.process ? await isAlive(rec.process) : false;
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

  // ---- QMP ----

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
}

function checkId(id: string): void {
  if (!VM_SANDBOX_ID.test(id)) {
    throw new BadSpecError(`sandbox id ${JSON.stringify(id)} is not usable as a directory name (${VM_SANDBOX_ID})`);
  }
}
