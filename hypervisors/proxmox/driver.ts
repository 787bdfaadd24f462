// Proxmox VE driver: each sandbox is a linked clone of a template VM, driven through the PVE REST
// API with an API token (client.ts). Finding and making a sandbox's VM is vms.ts, powering it
// power.ts, every async call a task waited on (tasks.ts). Reference: docs/proxmox-api.md.
import { BadSpecError, HypervisorError, NotReadyError } from '../errors';
import { VM_GUEST_HOME } from '../guest/contract';
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
  VmState,
} from '../types';
import type { FileTransport } from '../guest/file-transport';
import { TransportFileSystem } from '../guest/sandbox-file-system';
import { runStreamingInGuest } from '../guest/stream-exec';
import { PveFiles } from './files';
import type { ProxmoxSettings } from '../../config/drivers';
import { PveApiError, PveClient, sleep } from './client';
import { mapErrors, toHypervisorError, VM_GONE } from './errors';
import { PveGuestAgent, PveStreamingAgent } from './guest-agent';
import { vmName } from './identity';
import { destroyVm, shutdownVm, startVm } from './power';
import { PveTasks, vmPath } from './tasks';
import { SandboxVms, type SandboxVm } from './vms';

/** ProxmoxSettings (config/drivers.ts) and knobs tests turn. */
export interface ProxmoxOptions {
  /** `https://host:8006` (with or without `/api2/json`). */
  url: string;
  /** `USER@REALM!TOKENID=SECRET`. */
  token: string;
  /** Node new sandboxes are cloned on (existing ones are addressed on whatever node they live). */
  node: string;
  /** Template name → template vmid. */
  templates: Record<string, number>;
  /** Template used when the spec names none (default: `default`, else the first). */
  defaultTemplate?: string;
  /** Names this Hourglass deployment in its VMs' tags: list(), the reaper and destroy see only
   *  these, so deployments sharing a PVE cluster never touch each other's VMs. */
  deployment: string;
  insecureTls?: boolean;
  taskTimeoutMs?: number;
  /** Graceful shutdown time before stop() forces the VM off. */
  shutdownTimeoutSeconds?: number;
  /** Pauses between in-driver retries of transient PVE errors (then the caller's retry policy takes over). */
  retryDelaysMs?: number[];
}

export class ProxmoxHypervisor implements Hypervisor {
  readonly name = 'proxmox';
  /** Files through the common layer (guest/sandbox-file-system.ts) over this driver's FileTransport. */
  readonly fileSystem: SandboxFileSystem = new TransportFileSystem(async (id) => this.fileTransport(id));
  private readonly client: PveClient;
  private readonly tasks: PveTasks;
  private readonly vms: SandboxVms;
  private readonly defaultTemplate: string;

  constructor(private readonly opts: ProxmoxOptions) {
    this.client = new PveClient({ url: opts.url, token: opts.token, insecureTls: opts.insecureTls });
    this.tasks = new PveTasks(
      this.client,
      opts.taskTimeoutMs ?? 10 * 60_000,
      opts.retryDelaysMs ?? [200, 500, 1000, 2000],
    );
    this.vms = new SandboxVms(this.tasks, opts.deployment, opts.node);
    const names = Object.keys(opts.templates);
    this.defaultTemplate = opts.defaultTemplate ?? (names.includes('default') ? 'default' : (names[0] ?? 'default'));
  }

  async create(spec: SandboxSpec, ctx: OpContext = {}): Promise<VmInfo> {
    const templateName = spec.template ?? this.defaultTemplate;
    const templateVmid = this.opts.templates[templateName];
    if (templateVmid === undefined) {
      throw new BadSpecError(
        `unknown template '${templateName}' (known: ${Object.keys(this.opts.templates).join(', ') || 'none'})`,
      );
    }
    const { cpus, memoryMiB } = spec.limits ?? {};
    if (cpus !== undefined && !(Number.isInteger(cpus) && cpus >= 1)) {
      throw new BadSpecError(`cpus must be a positive integer (got ${cpus})`);
    }
    if (memoryMiB !== undefined && !(Number.isInteger(memoryMiB) && memoryMiB >= 16)) {
      throw new BadSpecError(`memoryMiB must be an integer ≥ 16 (got ${memoryMiB})`);
    }

    return mapErrors(spec.id, async () => {
      // Idempotent by id: a retry finds the VM an earlier attempt made, whatever step it reached.
      const vm =
        (await this.vms.adoptExisting(spec.id, ctx)) ??
        (await this.vms.cloneTemplate(spec, templateName, templateVmid, ctx));
      if (!vm.tagged) await this.vms.tagAndSize(vm, spec, ctx);
      await startVm(this.tasks, vm, ctx);
      // A VM the token cannot audit is silently missing from /cluster/resources (proxmox-api.md §3): we could
      // never find, list or reap it again, so refuse to hand it out.
      if (!(await this.vms.find(spec.id)).some((found) => found.vmid === vm.vmid)) {
        await destroyVm(this.tasks, vm, ctx);
        throw new HypervisorError(
          `VM ${vm.vmid} is not visible in /cluster/resources (the token lacks VM.Audit on /vms/${vm.vmid}?)`,
          'forbidden',
          true,
        );
      }
      return this.info(spec.id, vm, 'running');
    });
  }

  async waitReady(id: string, timeoutMs: number, ctx: OpContext = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const vm = await mapErrors(id, () => this.vms.require(id));
    let lastError = 'no answer yet';
    for (;;) {
      try {
        await this.client.post(vmPath(vm, 'agent/ping'), undefined, { signal: ctx.signal }); // this loop retries
        return;
      } catch (err) {
        if (!(err instanceof PveApiError)) throw err;
        // A config problem, not a slow boot: waiting cannot help (proxmox-api.md §8).
        if (/No QEMU guest agent configured/.test(err.pveMessage)) {
          throw new NotReadyError(id, timeoutMs, `${err.pveMessage} (enable the agent on the template)`);
        }
        if (VM_GONE.test(err.pveMessage) || err.status === 401 || err.status === 403) {
          throw toHypervisorError(err, id);
        }
        lastError = err.pveMessage; // `QEMU guest agent is not running`, `VM N is not running`, transport…
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new NotReadyError(id, timeoutMs, lastError);
      ctx.progress?.(`waiting for the guest agent of VM ${vm.vmid}: ${lastError}`);
      await sleep(Math.min(250, left), ctx.signal);
    }
  }

  async exec(id: string, req: ExecRequest, ctx: OpContext = {}): Promise<ExecResult> {
    const plan = planVmExec(id, req);
    return mapErrors(id, async () => {
      const vm = await this.vms.require(id);
      return runInGuest(new PveGuestAgent(this.client, vm, this.tasks.retryDelaysMs), plan, ctx);
    });
  }

  async execStream(id: string, req: StreamExecRequest, onOutput: OutputSink, ctx: OpContext = {}): Promise<ExecResult> {
    const plan = planVmExec(id, req);
    return mapErrors(id, async () => {
      const vm = await this.vms.require(id);
      const agent = new PveStreamingAgent(this.client, vm, this.tasks.retryDelaysMs, this.files(id, vm));
      return runStreamingInGuest(agent, plan, req.stdin, onOutput, ctx);
    });
  }

  /** What the common file layer needs of this sandbox (guest/file-transport.ts). */
  fileTransport(id: string): FileTransport {
    const run: FileTransport['run'] = (command, opts = {}, ctx) => {
      const req = { command, timeoutSeconds: opts.timeoutSeconds };
      return opts.stdin ? this.execStream(id, { ...req, stdin: opts.stdin }, () => {}, ctx) : this.exec(id, req, ctx);
    };
    const files = async () => this.files(id, await mapErrors(id, () => this.vms.require(id)));
    return {
      id,
      workspace: VM_GUEST_HOME,
      run,
      writeBytes: async (path, data, ctx) =>
        mapErrors(id, async () => (await files()).writeFile(path, data, ctx?.signal)),
      readBytes: async (path, sink, ctx) =>
        mapErrors(id, async () => (await files()).readFile(path, sink, ctx?.signal)),
    };
  }

  private files(id: string, vm: SandboxVm): PveFiles {
    return new PveFiles(id, this.client, vm, (argv) => this.exec(id, { command: argv }));
  }

  async stop(id: string, ctx: OpContext = {}): Promise<void> {
    const timeoutS = this.opts.shutdownTimeoutSeconds ?? 30;
    await mapErrors(id, async () => shutdownVm(this.tasks, await this.vms.require(id), timeoutS, ctx));
  }

  async start(id: string, ctx: OpContext = {}): Promise<void> {
    await mapErrors(id, async () => startVm(this.tasks, await this.vms.require(id), ctx));
  }

  async destroy(id: string, ctx: OpContext = {}): Promise<{ existed: boolean }> {
    return mapErrors(id, async () => {
      // All matches: a lost clone answer may have left a second VM for the same id.
      const vms = await this.vms.find(id);
      for (const vm of vms) await destroyVm(this.tasks, vm, ctx);
      return { existed: vms.length > 0 };
    });
  }

  async list(): Promise<VmInfo[]> {
    return mapErrors('*', async () =>
      (await this.vms.all()).map(({ id, row }) => this.info(id, { ...row, tagged: true }, stateOf(row.status))),
    );
  }

  async describe(id: string): Promise<VmInfo | null> {
    return mapErrors(id, async () => {
      const [vm] = await this.vms.find(id);
      if (!vm) return null;
      try {
        const status = await this.client.get<{ status: string; qmpstatus?: string; lock?: string }>(
          vmPath(vm, 'status/current'),
        );
        // A paused guest cannot run commands, so it is neither plainly running nor stopped.
        const state: VmState =
          status.status === 'running' && status.qmpstatus === 'paused' ? 'unknown' : stateOf(status.status);
        return this.info(id, { ...vm, lock: status.lock }, state, { qmpstatus: status.qmpstatus });
      } catch (err) {
        if (err instanceof PveApiError && VM_GONE.test(err.pveMessage)) return null;
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private info(id: string, vm: SandboxVm, state: VmState, extra: Record<string, unknown> = {}): VmInfo {
    return {
      id,
      driver: this.name,
      state,
      isolation: 'qemu-kvm (proxmox)',
      details: {
        vmid: vm.vmid,
        node: vm.node,
        name: vm.name ?? vmName(id),
        ...(vm.lock ? { lock: vm.lock } : {}),
        ...extra,
      },
    };
  }
}

function stateOf(status: string | undefined): VmState {
  return status === 'running' ? 'running' : status === 'stopped' ? 'stopped' : 'unknown';
}

/** The state dir is unused: PVE itself keeps every fact the driver needs (tags, names, descriptions). */
export function createProxmoxHypervisor(settings: ProxmoxSettings, _stateDir: string): Hypervisor {
  return new ProxmoxHypervisor(settings);
}
