// Proxmox VE driver: each sandbox is a linked clone of a template VM, driven through the PVE REST
// API with an API token. Every async call waits on its task UPID. Reference: docs/proxmox-api.md.
import { BadSpecError, BusyError, HypervisorError, NotFoundError, NotReadyError } from '../errors';
import {
  isTransientPveError,
  PveApiError,
  PveClient,
  PveTaskError,
  PveTaskTimeoutError,
  sleep,
  type PveParams,
} from './client';
import {
  deploymentTag,
  descriptionNamesSandbox,
  idTag,
  OWNER_TAG,
  parseTags,
  sandboxIdOfTags,
  vmDescription,
  vmName,
} from './identity';
import { VM_GUEST_HOME } from '../guest/contract';
import { runInGuest } from '../guest/exec';
import { planExec } from '../guest/exec-plan';
import { PveGuestAgent } from './guest-agent';
import type { ExecRequest, ExecResult, Hypervisor, OpContext, SandboxSpec, VmInfo, VmState } from '../types';
import type { ProxmoxSettings } from '../../config/drivers';

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

/** One row of GET /cluster/resources?type=vm (notes §3); name/status may lag for fresh VMs. */
interface ResourceRow {
  vmid: number;
  type: string;
  node: string;
  name?: string;
  status?: string;
  template?: number;
  tags?: string;
  lock?: string;
}

/** A VM found for a sandbox; `tagged` false = cloned but never tagged (a crash between the two). */
interface SandboxVm {
  vmid: number;
  node: string;
  name?: string;
  status?: string;
  lock?: string;
  tagged: boolean;
}

const MAX_CLONE_ATTEMPTS = 5;
const ALREADY_RUNNING = /already running/;
const VM_GONE = /does not exist|unable to find configuration file/;

export class ProxmoxHypervisor implements Hypervisor {
  readonly name = 'proxmox';
  private readonly client: PveClient;
  private readonly defaultTemplate: string;
  private readonly taskTimeoutMs: number;
  private readonly retryDelaysMs: number[];

  constructor(private readonly opts: ProxmoxOptions) {
    this.client = new PveClient({ url: opts.url, token: opts.token, insecureTls: opts.insecureTls });
    const names = Object.keys(opts.templates);
    this.defaultTemplate = opts.defaultTemplate ?? (names.includes('default') ? 'default' : (names[0] ?? 'default'));
    this.taskTimeoutMs = opts.taskTimeoutMs ?? 10 * 60_000;
    this.retryDelaysMs = opts.retryDelaysMs ?? [200, 500, 1000, 2000];
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

    return this.mapErrors(spec.id, async () => {
      // Idempotent by id: a retry finds the VM an earlier attempt made, whatever step it reached.
      const vm =
        (await this.adoptExisting(spec.id, ctx)) ?? (await this.cloneTemplate(spec, templateName, templateVmid, ctx));
      if (!vm.tagged) await this.tagAndSize(vm, spec, ctx);
      await this.startVm(vm, ctx);
      // A VM the token cannot audit is silently missing from /cluster/resources (notes §3): we could
      // never find, list or reap it again, so refuse to hand it out.
      if (!(await this.findVms(spec.id)).some((found) => found.vmid === vm.vmid)) {
        await this.destroyVm(vm, ctx);
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
    const vm = await this.mapErrors(id, () => this.requireVm(id));
    let lastError = 'no answer yet';
    for (;;) {
      try {
        await this.client.post(this.vmPath(vm, 'agent/ping'), undefined, { signal: ctx.signal }); // this loop retries
        return;
      } catch (err) {
        if (!(err instanceof PveApiError)) throw err;
        // A config problem, not a slow boot: waiting cannot help (notes §8).
        if (/No QEMU guest agent configured/.test(err.pveMessage)) {
          throw new NotReadyError(id, timeoutMs, `${err.pveMessage} (enable the agent on the template)`);
        }
        if (VM_GONE.test(err.pveMessage) || err.status === 401 || err.status === 403) {
          throw this.toHypervisorError(err, id);
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
    const plan = planExec(id, req, VM_GUEST_HOME);
    return this.mapErrors(id, async () => {
      const vm = await this.requireVm(id);
      return runInGuest(new PveGuestAgent(this.client, vm, this.retryDelaysMs), plan, ctx);
    });
  }

  async stop(id: string, ctx: OpContext = {}): Promise<void> {
    await this.mapErrors(id, async () => {
      const vm = await this.requireVm(id);
      // Shutdown lets the guest flush its disks; forceStop turns it off if it does not obey.
      await this.withRetries(ctx, `stop VM ${vm.vmid}`, () =>
        this.runTask(
          this.vmPath(vm, 'status/shutdown'),
          { forceStop: true, timeout: this.opts.shutdownTimeoutSeconds ?? 30 },
          ctx,
        ),
      );
    });
  }

  async start(id: string, ctx: OpContext = {}): Promise<void> {
    await this.mapErrors(id, async () => this.startVm(await this.requireVm(id), ctx));
  }

  async destroy(id: string, ctx: OpContext = {}): Promise<{ existed: boolean }> {
    return this.mapErrors(id, async () => {
      // All matches: a lost clone answer may have left a second VM for the same id.
      const vms = await this.findVms(id);
      for (const vm of vms) await this.destroyVm(vm, ctx);
      return { existed: vms.length > 0 };
    });
  }

  async list(): Promise<VmInfo[]> {
    return this.mapErrors('*', async () => {
      const rows = await this.resources();
      return rows.flatMap((row) => {
        const id = sandboxIdOfTags(row.tags, this.opts.deployment);
        return id === undefined ? [] : [this.info(id, { ...row, tagged: true }, stateOf(row.status))];
      });
    });
  }

  async describe(id: string): Promise<VmInfo | null> {
    return this.mapErrors(id, async () => {
      const [vm] = await this.findVms(id);
      if (!vm) return null;
      try {
        const status = await this.client.get<{ status: string; qmpstatus?: string; lock?: string }>(
          this.vmPath(vm, 'status/current'),
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

  // ---- steps -------------------------------------------------------------------------------

  /** The VM an earlier attempt made for this id; waits out a clone still in progress. */
  private async adoptExisting(id: string, ctx: OpContext): Promise<SandboxVm | undefined> {
    const deadline = Date.now() + this.taskTimeoutMs;
    for (;;) {
      const [vm] = await this.findVms(id);
      if (!vm || vm.lock !== 'clone') {
        if (vm?.lock === 'destroyed') throw new BusyError(`VM ${vm.vmid} of sandbox ${id} is being destroyed`);
        return vm;
      }
      // Its clone task is still running (or a previous attempt's is): wait for it to end.
      if (Date.now() > deadline) throw new BusyError(`VM ${vm.vmid} of sandbox ${id} still locked (clone)`);
      ctx.progress?.(`VM ${vm.vmid} is still being cloned`);
      await sleep(500, ctx.signal);
    }
  }

  /** nextid + linked clone; nextid reserves nothing, so a lost race just takes the next id (notes §3). */
  private async cloneTemplate(
    spec: SandboxSpec,
    templateName: string,
    templateVmid: number,
    ctx: OpContext,
  ): Promise<SandboxVm> {
    const node = this.opts.node;
    for (let attempt = 1; ; attempt++) {
      const newid = Number(await this.client.get<string>('/cluster/nextid')); // a JSON *string*
      ctx.progress?.(`cloning template ${templateName} (${templateVmid}) to VM ${newid}`);
      try {
        await this.runTask(
          `/nodes/${node}/qemu/${templateVmid}/clone`,
          {
            newid,
            name: vmName(spec.id),
            description: vmDescription(spec.id, this.opts.deployment, templateName, spec.labels),
            full: false, // linked clone (PVE's default for templates, said explicitly)
          },
          ctx,
        );
        return { vmid: newid, node, tagged: false };
      } catch (err) {
        const text = err instanceof PveApiError ? err.pveMessage : err instanceof PveTaskError ? err.exitstatus : '';
        if (err instanceof PveApiError && VM_GONE.test(text)) {
          throw new BadSpecError(
            `template '${templateName}' (vmid ${templateVmid}) does not exist on node ${node}: ${text}`,
          );
        }
        if (/Linked clone feature is not supported/.test(text)) {
          throw new BadSpecError(`template '${templateName}' (vmid ${templateVmid}) is not a template: ${text}`);
        }
        const lostRace = /config file already exists/.test(text) || text.includes(`lock-${newid}.conf' - got timeout`);
        // No answer from PVE: the clone may have started, so look for it before cloning again.
        const unknownOutcome =
          err instanceof PveApiError && (err.status === 0 || err.status >= 502) && err.status !== 595;
        if (unknownOutcome) {
          const made = await this.adoptExisting(spec.id, ctx);
          if (made) return made;
        }
        if ((lostRace || unknownOutcome) && attempt < MAX_CLONE_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  /** Tags make the VM listable as ours; cores/memory follow the spec. Existing tags are kept. */
  private async tagAndSize(vm: SandboxVm, spec: SandboxSpec, ctx: OpContext): Promise<void> {
    await this.withRetries(ctx, `configure VM ${vm.vmid}`, async () => {
      const config = await this.client.get<{ tags?: string }>(this.vmPath(vm, 'config'));
      const tags = [
        ...new Set([...parseTags(config.tags), OWNER_TAG, deploymentTag(this.opts.deployment), idTag(spec.id)]),
      ].join(';');
      const params: PveParams = { tags };
      const { cpus, memoryMiB } = spec.limits ?? {};
      if (cpus !== undefined) params.cores = cpus;
      if (memoryMiB !== undefined) params.memory = String(memoryMiB);
      await this.client.put(this.vmPath(vm, 'config'), params, { signal: ctx.signal }); // withRetries repeats it
    });
    vm.tagged = true;
  }

  private async startVm(vm: SandboxVm, ctx: OpContext): Promise<void> {
    await this.withRetries(ctx, `start VM ${vm.vmid}`, async () => {
      try {
        await this.runTask(this.vmPath(vm, 'status/start'), {}, ctx);
      } catch (err) {
        // "already running" is a task exitstatus, and fine here (notes §5).
        if (err instanceof PveTaskError && ALREADY_RUNNING.test(err.exitstatus)) return;
        throw err;
      }
    });
  }

  /** Stop (a no-op when stopped), then delete with purge; a VM that vanished meanwhile is fine. */
  private async destroyVm(vm: SandboxVm, ctx: OpContext): Promise<void> {
    await this.withRetries(ctx, `destroy VM ${vm.vmid}`, async () => {
      try {
        await this.runTask(this.vmPath(vm, 'status/stop'), {}, ctx).catch((err: unknown) => {
          // Suspended to disk = already off, and the one lock destroy accepts (notes §5, §6).
          if (!(err instanceof PveTaskError && err.exitstatus === 'VM is locked (suspended)')) throw err;
        });
        // A running VM cannot be destroyed (notes §6); if someone started it again, the retry stops it.
        await this.runTask(
          `/nodes/${vm.node}/qemu/${vm.vmid}`,
          { purge: true, 'destroy-unreferenced-disks': true },
          ctx,
          'DELETE',
        );
      } catch (err) {
        const text = err instanceof PveApiError ? err.pveMessage : err instanceof PveTaskError ? err.exitstatus : '';
        if (VM_GONE.test(text)) return;
        if (/is running - destroy failed/.test(text)) throw new BusyError(text);
        throw err;
      }
    });
  }

  // ---- lookup ------------------------------------------------------------------------------

  private async resources(): Promise<ResourceRow[]> {
    const rows = await this.client.get<ResourceRow[]>('/cluster/resources', { type: 'vm' });
    // Templates are never sandboxes; lxc containers are not ours.
    return rows.filter((row) => row.type === 'qemu' && Number(row.template ?? 0) !== 1);
  }

  /** The sandbox's VMs, lowest vmid first: tagged ones, else an untagged clone whose description names the id. */
  private async findVms(id: string): Promise<SandboxVm[]> {
    const rows = await this.resources();
    const tagged = rows.filter((row) => sandboxIdOfTags(row.tags, this.opts.deployment) === id);
    if (tagged.length > 0) return tagged.sort(byVmid).map((row) => ({ ...row, tagged: true }));

    // Crash between clone and tagging: the name and description were set by the clone itself.
    // A fresh VM may have no name yet in /cluster/resources (notes §3), so those are checked too.
    const name = vmName(id);
    const candidates = rows.filter(
      (row) => !parseTags(row.tags).includes(OWNER_TAG) && (row.name === name || row.name === undefined),
    );
    const found: SandboxVm[] = [];
    for (const row of candidates.sort(byVmid)) {
      try {
        const config = await this.client.get<{ name?: string; description?: string }>(
          `/nodes/${row.node}/qemu/${row.vmid}/config`,
        );
        if (config.name === name && descriptionNamesSandbox(config.description, id, this.opts.deployment)) {
          found.push({ ...row, tagged: false });
        }
      } catch (err) {
        if (!(err instanceof PveApiError && VM_GONE.test(err.pveMessage))) throw err;
      }
    }
    return found;
  }

  private async requireVm(id: string): Promise<SandboxVm> {
    const [vm] = await this.findVms(id);
    if (!vm) throw new NotFoundError(id, 'no VM tagged with it in /cluster/resources');
    return vm;
  }

  // ---- plumbing ----------------------------------------------------------------------------

  /** Starts an async PVE call and waits on its UPID. */
  private async runTask(
    path: string,
    params: PveParams,
    ctx: OpContext,
    method: 'POST' | 'DELETE' = 'POST',
  ): Promise<void> {
    const upid = await this.client.request<string>(method, path, params, { signal: ctx.signal });
    const result = await this.client.waitTask(upid, {
      timeoutMs: this.taskTimeoutMs,
      signal: ctx.signal,
      onPoll: (ms) => ctx.progress?.(`waiting for ${upid.split(':')[5]} task (${ms} ms)`),
    });
    if (result.warnings > 0) ctx.progress?.(`${upid.split(':')[5]} task finished with ${result.exitstatus}`);
  }

  /** Retries locks, flock timeouts, quorum loss and transport errors a few times, then gives up. */
  private async withRetries<T>(ctx: OpContext, what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const delay = this.retryDelaysMs[attempt];
        const transient = isTransientPveError(err) || err instanceof BusyError;
        if (!transient || err instanceof PveTaskTimeoutError || delay === undefined || ctx.signal?.aborted) throw err;
        ctx.progress?.(`${what}: ${err instanceof Error ? err.message : String(err)}; retrying`);
        await sleep(delay, ctx.signal);
      }
    }
  }

  private async mapErrors<T>(id: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.toHypervisorError(err, id);
    }
  }

  /** Permanent: auth, permissions, bad requests, missing VMs. Everything else may be retried. */
  private toHypervisorError(err: unknown, id: string): unknown {
    if (err instanceof HypervisorError || !(err instanceof Error)) return err;
    if (err instanceof PveApiError) {
      const text = err.pveMessage;
      if (err.status === 401) {
        return new HypervisorError(`PVE rejected the API token: ${err.message}`, 'unauthorized', true);
      }
      if (err.status === 403) return new HypervisorError(err.message, 'forbidden', true);
      if (err.status === 400) return new HypervisorError(err.message, 'bad_request', true);
      if (err.status === 501) return new HypervisorError(err.message, 'not_implemented', true);
      if (VM_GONE.test(text)) return new NotFoundError(id, text);
      if (/VM is locked|can't lock file|not running/.test(text)) return new BusyError(`sandbox ${id}: ${err.message}`);
      return new HypervisorError(err.message, err.status === 500 ? 'pve_error' : 'pve_unavailable', false);
    }
    if (err instanceof PveTaskError) {
      if (VM_GONE.test(err.exitstatus)) return new NotFoundError(id, err.exitstatus);
      if (/VM is locked|can't lock file/.test(err.exitstatus)) return new BusyError(`sandbox ${id}: ${err.message}`);
      return new HypervisorError(`sandbox ${id}: ${err.message}`, 'task_failed', false);
    }
    if (err instanceof PveTaskTimeoutError) {
      return new HypervisorError(`sandbox ${id}: ${err.message}`, 'task_timeout', false);
    }
    return err; // aborts and programming errors pass through unchanged
  }

  private vmPath(vm: { node: string; vmid: number }, rest: string): string {
    return `/nodes/${vm.node}/qemu/${vm.vmid}/${rest}`;
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

const byVmid = (a: { vmid: number }, b: { vmid: number }) => a.vmid - b.vmid;

function stateOf(status: string | undefined): VmState {
  return status === 'running' ? 'running' : status === 'stopped' ? 'stopped' : 'unknown';
}

/** The state dir is unused: PVE itself keeps every fact the driver needs (tags, names, descriptions). */
export function createProxmoxHypervisor(settings: ProxmoxSettings, _stateDir: string): Hypervisor {
  return new ProxmoxHypervisor(settings);
}
