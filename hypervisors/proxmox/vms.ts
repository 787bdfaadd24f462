// A sandbox's VM on PVE: finding it (by its tags, or by the name and description a clone set before
// a crash kept it from being tagged), and making it (linked clone of a template, then tags and size).
import { BadSpecError, BusyError, NotFoundError } from '../errors';
import type { OpContext, SandboxSpec } from '../types';
import { PveApiError, sleep, type PveParams } from './client';
import { pveText, VM_GONE } from './errors';
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
import { vmPath, type PveTasks } from './tasks';

/** One row of GET /cluster/resources?type=vm (proxmox-api.md §3); name/status may lag for fresh VMs. */
export interface ResourceRow {
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
export interface SandboxVm {
  vmid: number;
  node: string;
  name?: string;
  status?: string;
  lock?: string;
  tagged: boolean;
}

const MAX_CLONE_ATTEMPTS = 5;

export class SandboxVms {
  constructor(
    private readonly tasks: PveTasks,
    /** Only VMs tagged with this deployment are ours. */
    private readonly deployment: string,
    /** Node new sandboxes are cloned on. */
    private readonly node: string,
  ) {}

  /** Every sandbox VM of this deployment, with the sandbox id its tags name. */
  async all(): Promise<{ id: string; row: ResourceRow }[]> {
    return (await this.resources()).flatMap((row) => {
      const id = sandboxIdOfTags(row.tags, this.deployment);
      return id === undefined ? [] : [{ id, row }];
    });
  }

  /** The sandbox's VMs, lowest vmid first: tagged ones, else an untagged clone whose description names the id. */
  async find(id: string): Promise<SandboxVm[]> {
    const rows = await this.resources();
    const tagged = rows.filter((row) => sandboxIdOfTags(row.tags, this.deployment) === id);
    if (tagged.length > 0) return tagged.sort(byVmid).map((row) => ({ ...row, tagged: true }));

    // Crash between clone and tagging: the name and description were set by the clone itself.
    // A fresh VM may have no name yet in /cluster/resources (proxmox-api.md §3), so those are checked too.
    const name = vmName(id);
    const candidates = rows.filter(
      (row) => !parseTags(row.tags).includes(OWNER_TAG) && (row.name === name || row.name === undefined),
    );
    const found: SandboxVm[] = [];
    for (const row of candidates.sort(byVmid)) {
      try {
        const config = await this.tasks.client.get<{ name?: string; description?: string }>(vmPath(row, 'config'));
        if (config.name === name && descriptionNamesSandbox(config.description, id, this.deployment)) {
          found.push({ ...row, tagged: false });
        }
      } catch (err) {
        if (!(err instanceof PveApiError && VM_GONE.test(err.pveMessage))) throw err;
      }
    }
    return found;
  }

  async require(id: string): Promise<SandboxVm> {
    const [vm] = await this.find(id);
    if (!vm) throw new NotFoundError(id, 'no VM tagged with it in /cluster/resources');
    return vm;
  }

  /** The VM an earlier attempt made for this id; waits out a clone still in progress. */
  async adoptExisting(id: string, ctx: OpContext): Promise<SandboxVm | undefined> {
    const deadline = Date.now() + this.tasks.taskTimeoutMs;
    for (;;) {
      const [vm] = await this.find(id);
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

  /** nextid + linked clone; nextid reserves nothing, so a lost race just takes the next id (proxmox-api.md §3). */
  async cloneTemplate(
    spec: SandboxSpec,
    templateName: string,
    templateVmid: number,
    ctx: OpContext,
  ): Promise<SandboxVm> {
    const node = this.node;
    const template = `template '${templateName}' (vmid ${templateVmid})`;
    for (let attempt = 1; ; attempt++) {
      const newid = Number(await this.tasks.client.get<string>('/cluster/nextid')); // a JSON *string*
      ctx.progress?.(`cloning template ${templateName} (${templateVmid}) to VM ${newid}`);
      try {
        const params = {
          newid,
          name: vmName(spec.id),
          description: vmDescription(spec.id, this.deployment, templateName, spec.labels),
          full: false, // linked clone (PVE's default for templates, said explicitly)
        };
        await this.tasks.run(`/nodes/${node}/qemu/${templateVmid}/clone`, params, ctx);
        return { vmid: newid, node, tagged: false };
      } catch (err) {
        const text = pveText(err);
        if (err instanceof PveApiError && VM_GONE.test(text)) {
          throw new BadSpecError(`${template} does not exist on node ${node}: ${text}`);
        }
        if (/Linked clone feature is not supported/.test(text)) {
          throw new BadSpecError(`${template} is not a template: ${text}`);
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
  async tagAndSize(vm: SandboxVm, spec: SandboxSpec, ctx: OpContext): Promise<void> {
    const ours = [OWNER_TAG, deploymentTag(this.deployment), idTag(spec.id)];
    await this.tasks.withRetries(ctx, `configure VM ${vm.vmid}`, async () => {
      const config = await this.tasks.client.get<{ tags?: string }>(vmPath(vm, 'config'));
      const params: PveParams = { tags: [...new Set([...parseTags(config.tags), ...ours])].join(';') };
      const { cpus, memoryMiB } = spec.limits ?? {};
      if (cpus !== undefined) params.cores = cpus;
      if (memoryMiB !== undefined) params.memory = String(memoryMiB);
      await this.tasks.client.put(vmPath(vm, 'config'), params, { signal: ctx.signal }); // withRetries repeats it
    });
    vm.tagged = true;
  }

  private async resources(): Promise<ResourceRow[]> {
    const rows = await this.tasks.client.get<ResourceRow[]>('/cluster/resources', { type: 'vm' });
    // Templates are never sandboxes; lxc containers are not ours.
    return rows.filter((row) => row.type === 'qemu' && Number(row.template ?? 0) !== 1);
  }
}

const byVmid = (a: { vmid: number }, b: { vmid: number }) => a.vmid - b.vmid;
