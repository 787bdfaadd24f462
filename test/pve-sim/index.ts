// Entry point: a PVE 8.x API simulator on a random local port, for the proxmox driver's tests and
// the lifecycle suites. See docs/proxmox-api.md for the behaviour it follows.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestAgents } from './agent';
import { FaultBook, type Fault, type FaultHandle, type RandomFailures } from './faults';
import { buildRoutes, newVm, normaliseTags, type SimContext } from './routes';
import { createPveServer, type RequestRecord } from './server';
import { agentEnabled, isTemplate, SimState } from './state';

export type { Fault, FaultHandle, FaultKind, RandomFailures, SimOp } from './faults';
export type { RequestRecord } from './server';
export { pveText } from './errors';

export interface PveSimulatorOptions {
  node?: string;
  port?: number;
  /** Template name → vmid; all are created as templates with the guest agent enabled. */
  templates?: Record<string, number>;
  /** `user@realm!tokenid` of the one valid API token. */
  tokenId?: string;
  tokenSecret?: string;
  /** Each task finishes after a random time in this range, so polling is exercised. */
  taskMs?: [number, number];
  /** The guest agent answers this long after start. */
  agentBootMs?: number;
  execTimeoutMs?: number;
  maxOutputBytes?: number;
  /** true (default): the PVE 8.4 error body with `message`; false: only the reason phrase. */
  messageField?: boolean;
  /** PVE delays 401s by ~3 s; tests want less. */
  authFailureDelayMs?: number;
  /** Fresh VMs show `status: unknown` and no name in /cluster/resources for this long. */
  resourcesLagMs?: number;
  /** Wait before an injected config flock timeout fails (PVE: 10 s). */
  flockWaitMs?: number;
  randomFailures?: RandomFailures;
}

export interface SimVmView {
  vmid: number;
  node: string;
  name?: string;
  status: 'running' | 'stopped';
  qmpstatus: string;
  template: boolean;
  tags: string[];
  lock?: string;
  description?: string;
  agent: boolean;
  config: Record<string, string | number>;
}

export interface AddVmOptions {
  vmid: number;
  name?: string;
  tags?: string;
  description?: string;
  template?: boolean;
  running?: boolean;
  /** Guest agent enabled in config (default true). */
  agent?: boolean;
}

export interface PveSimulator {
  /** Base URL including `/api2/json`, for HOURGLASS_PVE_URL. */
  url: string;
  /** `USER@REALM!TOKENID=SECRET`, for HOURGLASS_PVE_TOKEN. */
  token: string;
  node: string;
  /** `default=9000,ubuntu=9001`, for HOURGLASS_PVE_TEMPLATES. */
  templates: string;
  templateIds: Record<string, number>;
  /** All HOURGLASS_PVE_* variables createProxmoxHypervisor needs. */
  env: Record<string, string>;
  close(): Promise<void>;
  inject(fault: Fault): FaultHandle;
  clearFaults(): void;
  setRandomFailures(random: RandomFailures | undefined): void;
  setMessageField(on: boolean): void;
  vms(): SimVmView[];
  /** A VM made by someone else (or a special template). */
  addVm(vm: AddVmOptions): void;
  /** Sets or clears a persistent config lock (`VM is locked (<lock>)`; proxmox-api.md §9). */
  setLock(vmid: number, lock: string | undefined): void;
  /** The token lacks VM.Audit on this VM: it vanishes from /cluster/resources. */
  hideFromResources(vmid: number, hidden?: boolean): void;
  /** Every request so far, in order. */
  requests(): readonly RequestRecord[];
}

export async function startPveSimulator(opts: PveSimulatorOptions = {}): Promise<PveSimulator> {
  const node = opts.node ?? 'pve';
  const templateIds = opts.templates ?? { default: 9000, ubuntu: 9001 };
  const tokenId = opts.tokenId ?? 'hourglass@pve!ci';
  const tokenSecret = opts.tokenSecret ?? randomUUID();
  const [minMs, maxMs] = opts.taskMs ?? [20, 200];
  let messageField = opts.messageField ?? true;
  const workRoot = mkdtempSync(join(tmpdir(), 'pve-sim-'));

  const state = new SimState(node, { minMs, maxMs });
  const faults = new FaultBook();
  faults.setRandom(opts.randomFailures);
  const agents = new GuestAgents(
    {
      bootMs: opts.agentBootMs ?? 300,
      execTimeoutMs: opts.execTimeoutMs ?? 60_000,
      maxOutputBytes: opts.maxOutputBytes ?? 16 * 1024 * 1024,
      workRoot,
    },
    state,
    faults,
  );
  const sim: SimContext = {
    state,
    faults,
    agents,
    resourcesLagMs: opts.resourcesLagMs ?? 0,
    flockWaitMs: opts.flockWaitMs ?? 200,
    hidden: new Set(),
  };
  const requestLog: RequestRecord[] = [];

  const addVm = (vm: AddVmOptions) => {
    const created = newVm(vm.vmid, node, {
      name: vm.name ?? `vm-${vm.vmid}`,
      cores: 2,
      memory: '2048',
      ostype: 'l26',
      scsi0: `local-lvm:${vm.template ? 'base' : 'vm'}-${vm.vmid}-disk-0,size=8G`,
      net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0',
      ...(vm.agent === false ? {} : { agent: '1' }),
      ...(vm.template ? { template: 1 } : {}),
      ...(vm.tags ? { tags: normaliseTags(vm.tags) } : {}),
      ...(vm.description ? { description: vm.description } : {}),
    });
    created.createdAt = 0; // long known to pvestatd
    if (vm.running) {
      created.status = 'running';
      created.qmpstatus = 'running';
      created.startedAt = Date.now();
    }
    state.vms.set(vm.vmid, created);
  };
  for (const [name, vmid] of Object.entries(templateIds)) addVm({ vmid, name: `tmpl-${name}`, template: true });

  const server = createPveServer(
    sim,
    buildRoutes(sim),
    {
      tokens: new Map([[tokenId, tokenSecret]]),
      messageField: () => messageField,
      authFailureDelayMs: opts.authFailureDelayMs ?? 3000,
    },
    requestLog,
  );
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const url = `http://127.0.0.1:${port}/api2/json`;
  const token = `${tokenId}=${tokenSecret}`;
  const templates = Object.entries(templateIds)
    .map(([name, vmid]) => `${name}=${vmid}`)
    .join(',');

  return {
    url,
    token,
    node,
    templates,
    templateIds,
    env: {
      HOURGLASS_PVE_URL: url,
      HOURGLASS_PVE_TOKEN: token,
      HOURGLASS_PVE_NODE: node,
      HOURGLASS_PVE_TEMPLATES: templates,
    },
    async close() {
      state.close();
      agents.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(workRoot, { recursive: true, force: true });
    },
    inject: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    setRandomFailures: (random) => faults.setRandom(random),
    setMessageField: (on) => (messageField = on),
    vms: () =>
      [...state.vms.values()].map((vm) => ({
        vmid: vm.vmid,
        node: vm.node,
        name: vm.config.name as string | undefined,
        status: vm.status,
        qmpstatus: vm.qmpstatus,
        template: isTemplate(vm),
        tags: vm.config.tags ? String(vm.config.tags).split(';') : [],
        lock: vm.config.lock as string | undefined,
        description: vm.config.description as string | undefined,
        agent: agentEnabled(vm),
        config: { ...vm.config },
      })),
    addVm,
    setLock(vmid, lock) {
      const vm = state.getVm(vmid);
      if (lock === undefined) delete vm.config.lock;
      else vm.config.lock = lock;
    },
    hideFromResources(vmid, hidden = true) {
      if (hidden) sim.hidden.add(vmid);
      else sim.hidden.delete(vmid);
    },
    requests: () => requestLog,
  };
}
