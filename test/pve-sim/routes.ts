// The /api2/json endpoints the driver uses, one handler each, following the proxmox-api.md §2–§8.
import { createHash } from 'node:crypto';
import type { GuestAgents } from './agent';
import { die, paramError, pveText } from './errors';
import type { Fault, FaultBook, SimOp } from './faults';
import { checkParams, type RawParams, type Schema } from './params';
import { agentEnabled, isTemplate, type SimState, type SimVm, type TaskOutcome } from './state';

export interface SimContext {
  state: SimState;
  faults: FaultBook;
  agents: GuestAgents;
  /** A VM younger than this shows `status: unknown` and no name in /cluster/resources (proxmox-api.md §3). */
  resourcesLagMs: number;
  /** How long an injected flock timeout waits before failing (PVE: 10 s; proxmox-api.md §9). */
  flockWaitMs: number;
  /** VMs the token may not audit: silently omitted from /cluster/resources (proxmox-api.md §3, §10.7). */
  hidden: Set<number>;
}

export interface RequestContext {
  path: Record<string, string>;
  params: RawParams;
  /** `user@realm!tokenid`: the owner recorded in UPIDs. */
  user: string;
}

/** Log endpoints answer `{data, total}`. */
export class WithTotal {
  constructor(
    readonly data: unknown,
    readonly total: number,
  ) {}
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  pattern: string;
  op: SimOp;
  handler: (ctx: RequestContext) => unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const VMID: Schema = { vmid: { type: 'integer', minimum: 100, maximum: 999_999_999 } };
const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

export function buildRoutes(sim: SimContext): Route[] {
  const { state, faults, agents } = sim;

  const vmidOf = (ctx: RequestContext) => checkParams({ vmid: ctx.path.vmid }, VMID).vmid as number;

  /** Runs a task with the op's injected task faults applied around its body. */
  const runTask = (
    op: SimOp,
    type: string,
    vmid: number,
    user: string,
    body: (log: (line: string) => void, fault: Fault | undefined) => Promise<TaskOutcome | void> | TaskOutcome | void,
  ): string => {
    const fault = faults.take(op, ['task-error', 'task-warnings', 'lock-timeout'], vmid);
    return state.startTask(type, vmid, user, async (log) => {
      if (fault?.kind === 'lock-timeout') {
        await sleep(fault.delayMs ?? 0);
        throw new Error(fault.message ?? pveText.flockTimeout(vmid));
      }
      if (fault?.kind === 'task-error' && op !== 'clone') throw new Error(fault.message ?? `${type} failed (injected)`);
      const outcome = (await body(log, fault)) || {};
      if (fault?.kind === 'task-warnings') {
        log('WARN: injected warning');
        return { warnings: fault.warnings ?? 1 };
      }
      return outcome;
    });
  };

  const powerOff = (vm: SimVm) => {
    vm.status = 'stopped';
    vm.qmpstatus = 'stopped';
    vm.startedAt = undefined;
    agents.powerOff(vm.vmid);
  };

  const powerOn = (vm: SimVm) => {
    vm.status = 'running';
    vm.qmpstatus = 'running';
    vm.startedAt = Date.now();
  };

  return [
    // §3: a JSON *string*; nothing is reserved.
    {
      method: 'GET',
      pattern: '/cluster/nextid',
      op: 'nextid',
      handler: ({ params }) => {
        const { vmid } = checkParams(params, { vmid: { ...VMID.vmid!, optional: true } });
        if (vmid !== undefined) {
          if (state.vms.has(vmid as number)) throw paramError({ vmid: `VM ${vmid} already exists` });
          return String(vmid);
        }
        const id = state.nextFreeVmid();
        if (faults.take('nextid', ['nextid-race'])) {
          // Another client clones onto the same id before we do.
          state.vms.set(id, newVm(id, state.node, { name: `other-client-${id}`, memory: '1024', cores: 1 }));
        }
        return String(id);
      },
    },
    {
      method: 'GET',
      pattern: '/cluster/resources',
      op: 'resources',
      handler: ({ params }) => {
        const { type } = checkParams(params, {
          type: { type: 'string', optional: true, enum: ['vm', 'storage', 'node', 'sdn'] },
        });
        const nodeEntry = {
          id: `node/${state.node}`,
          type: 'node',
          node: state.node,
          status: 'online',
          maxcpu: 8,
          maxmem: 34359738368,
        };
        if (type === 'node') return [nodeEntry];
        if (type === 'storage' || type === 'sdn') return [];
        const vms = [...state.vms.values()]
          .filter((vm) => !sim.hidden.has(vm.vmid))
          .map((vm) => resourceEntry(vm, sim.resourcesLagMs));
        return type === 'vm' ? vms : [nodeEntry, ...vms];
      },
    },
    {
      method: 'GET',
      pattern: '/nodes/{node}/qemu',
      op: 'resources',
      handler: () =>
        [...state.vms.values()].map((vm) => ({
          vmid: vm.vmid,
          name: vm.config.name,
          status: vm.status,
          ...(isTemplate(vm) ? { template: 1 } : {}),
        })),
    },

    // §2: linked clone of a template.
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/clone',
      op: 'clone',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, {
          newid: { type: 'integer', minimum: 100, maximum: 999_999_999 },
          name: { type: 'dns-name', optional: true },
          description: { type: 'string', optional: true, maxLength: 8192 },
          pool: { type: 'string', optional: true },
          snapname: { type: 'string', optional: true },
          storage: { type: 'string', optional: true },
          format: { type: 'string', optional: true, enum: ['raw', 'qcow2', 'vmdk'] },
          full: { type: 'boolean', optional: true },
          target: { type: 'string', optional: true },
          bwlimit: { type: 'integer', optional: true, minimum: 0 },
        });
        const source = state.getVm(vmid);
        const newid = p.newid as number;
        const full = (p.full as boolean | undefined) ?? !isTemplate(source);
        if (p.snapname !== undefined) throw die(`snapshot '${p.snapname}' does not exist`);
        if (!full && p.storage !== undefined) throw die("parameter 'storage' not allowed for linked clones");
        if (!full && !isTemplate(source)) {
          throw die(`Linked clone feature is not supported for 'local-lvm:vm-${vmid}-disk-0' (scsi0)`);
        }
        if (p.target !== undefined && p.target !== state.node) {
          throw die(`can't clone VM to node '${p.target}' (VM uses local storage)`);
        }
        if (state.vms.has(newid)) throw die(pveText.configExists(newid));
        state.checkLock(source);
        // The target config exists at once, locked `clone`, until the task ends (proxmox-api.md §2).
        const { template: _t, lock: _l, ...inherited } = source.config;
        const target = newVm(newid, state.node, {
          ...inherited,
          name: (p.name as string | undefined) ?? `Copy-of-VM-${source.config.name ?? vmid}`,
          ...(p.description !== undefined ? { description: p.description as string } : {}),
          scsi0: full
            ? `local-lvm:vm-${newid}-disk-0,size=8G`
            : `local-lvm:base-${vmid}-disk-0/vm-${newid}-disk-0,size=8G`,
          lock: 'clone',
        });
        if (!full) target.linkedFrom = vmid;
        state.vms.set(newid, target);
        return runTask('clone', 'qmclone', vmid, ctx.user, (log, fault) => {
          const removeTarget = () => state.vms.get(newid) === target && state.vms.delete(newid);
          if (fault?.kind === 'task-error') {
            log(`create ${full ? 'full' : 'linked'} clone of drive scsi0 (local-lvm:base-${vmid}-disk-0)`);
            removeTarget(); // on copy failure the target disks and config are removed
            throw new Error(fault.message ?? `clone failed: ${pveText.storageLockTimeout}`);
          }
          log(`create ${full ? 'full' : 'linked'} clone of drive scsi0 (local-lvm:base-${vmid}-disk-0)`);
          delete target.config.lock;
        });
      },
    },

    // §4: config.
    {
      method: 'GET',
      pattern: '/nodes/{node}/qemu/{vmid}/config',
      op: 'config',
      handler: (ctx) => {
        const vm = state.getVm(vmidOf(ctx));
        checkParams(ctx.params, {
          current: { type: 'boolean', optional: true },
          snapshot: { type: 'string', optional: true },
        });
        return { ...vm.config, digest: digestOf(vm) };
      },
    },
    ...(['PUT', 'POST'] as const).map((method): Route => ({
      method,
      pattern: '/nodes/{node}/qemu/{vmid}/config',
      op: 'config',
      handler: async (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, {
          ...CONFIG_SCHEMA,
          ...(method === 'POST'
            ? { background_delay: { type: 'integer', optional: true, minimum: 1, maximum: 30 } }
            : {}),
        });
        if (p.skiplock) throw paramError({ skiplock: 'Only root may use this option.' });
        const vm = state.getVm(vmid);
        const { digest, skiplock: _s, background_delay: _b, ...changes } = p;
        if (Object.keys(changes).length === 0) throw die('no options specified');
        // The config flock is taken before forking, so its timeout is a sync 500 (proxmox-api.md §9).
        const flock = faults.take('config', ['lock-timeout'], vmid);
        if (flock) {
          await sleep(flock.delayMs ?? sim.flockWaitMs);
          throw die(flock.message ?? pveText.flockTimeout(vmid));
        }
        if (digest !== undefined && digest !== digestOf(vm)) {
          throw die('checksum mismatch (file change by other user?)');
        }
        state.checkLock(vm);
        const apply = () => applyConfig(vm, changes);
        if (method === 'PUT') {
          apply();
          return null;
        }
        return runTask('config', 'qmconfig', vmid, ctx.user, () => {
          apply();
        });
      },
    })),

    // §5: status and power.
    {
      method: 'GET',
      pattern: '/nodes/{node}/qemu/{vmid}/status/current',
      op: 'status',
      handler: (ctx) => {
        const vm = state.getVm(vmidOf(ctx));
        const c = vm.config;
        return {
          vmid: vm.vmid,
          name: c.name ?? `VM ${vm.vmid}`,
          status: vm.status,
          qmpstatus: vm.qmpstatus,
          uptime: vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
          ...(vm.status === 'running' ? { pid: 10000 + vm.vmid } : {}),
          cpus: Number(c.cores ?? 1),
          cpu: 0,
          maxmem: Number(c.memory ?? 512) * 1048576,
          mem: 0,
          maxdisk: 8589934592,
          disk: 0,
          netin: 0,
          netout: 0,
          diskread: 0,
          diskwrite: 0,
          ha: { managed: 0 },
          agent: agentEnabled(vm) ? 1 : 0,
          ...(c.lock !== undefined ? { lock: c.lock } : {}),
          ...(c.tags !== undefined ? { tags: c.tags } : {}),
          ...(isTemplate(vm) ? { template: 1 } : {}),
        };
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/status/start',
      op: 'start',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        checkParams(ctx.params, {
          timeout: { type: 'integer', optional: true, minimum: 0 },
          skiplock: { type: 'boolean', optional: true },
          machine: { type: 'string', optional: true },
        });
        return runTask('start', 'qmstart', vmid, ctx.user, () => {
          const vm = state.getVm(vmid);
          if (isTemplate(vm)) throw new Error("you can't start a vm if it's a template");
          state.checkLock(vm, ['suspended']);
          // "already running" is a task exitstatus, not an HTTP error (proxmox-api.md §5).
          if (vm.status === 'running') throw new Error(pveText.alreadyRunning(vmid));
          if (vm.config.lock === 'suspended') delete vm.config.lock;
          powerOn(vm);
        });
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/status/stop',
      op: 'stop',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        checkParams(ctx.params, {
          timeout: { type: 'integer', optional: true, minimum: 0 },
          skiplock: { type: 'boolean', optional: true },
          keepActive: { type: 'boolean', optional: true },
          'overrule-shutdown': { type: 'boolean', optional: true },
        });
        return runTask('stop', 'qmstop', vmid, ctx.user, () => {
          const vm = state.vms.get(vmid);
          if (!vm) throw new Error(pveText.stopMissing(state.node, vmid));
          state.checkLock(vm);
          if (vm.status === 'stopped') return; // already stopped: a no-op
          powerOff(vm);
        });
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/status/shutdown',
      op: 'shutdown',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, {
          timeout: { type: 'integer', optional: true, minimum: 0 },
          forceStop: { type: 'boolean', optional: true },
          keepActive: { type: 'boolean', optional: true },
          skiplock: { type: 'boolean', optional: true },
        });
        const vm = state.getVm(vmid);
        if (vm.qmpstatus === 'paused' && !p.forceStop) throw die('VM is paused - cannot shutdown');
        return runTask('shutdown', 'qmshutdown', vmid, ctx.user, () => {
          state.checkLock(vm);
          if (vm.status === 'stopped') return;
          powerOff(vm);
        });
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/status/suspend',
      op: 'suspend',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, {
          todisk: { type: 'boolean', optional: true },
          statestorage: { type: 'string', optional: true },
          skiplock: { type: 'boolean', optional: true },
        });
        const vm = state.getVm(vmid);
        if (vm.status !== 'running') throw die(pveText.notRunning(vmid));
        return runTask('suspend', p.todisk ? 'qmsuspend' : 'qmpause', vmid, ctx.user, () => {
          state.checkLock(vm);
          if (p.todisk) {
            powerOff(vm);
            vm.config.lock = 'suspended';
          } else {
            vm.qmpstatus = 'paused';
          }
        });
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/status/resume',
      op: 'resume',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        checkParams(ctx.params, {
          skiplock: { type: 'boolean', optional: true },
          nocheck: { type: 'boolean', optional: true },
        });
        const vm = state.getVm(vmid);
        const suspendedToDisk = vm.config.lock === 'suspended';
        if (vm.status !== 'running' && !suspendedToDisk) throw die(pveText.notRunning(vmid));
        return runTask('resume', 'qmresume', vmid, ctx.user, () => {
          state.checkLock(vm, ['suspended']);
          if (suspendedToDisk) {
            delete vm.config.lock;
            powerOn(vm);
          } else {
            vm.qmpstatus = 'running';
          }
        });
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/status/reset',
      op: 'reset',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        checkParams(ctx.params, { skiplock: { type: 'boolean', optional: true } });
        const vm = state.getVm(vmid);
        if (vm.status !== 'running') throw die(pveText.notRunning(vmid));
        return runTask('reset', 'qmreset', vmid, ctx.user, () => {
          state.checkLock(vm);
          agents.powerOff(vmid);
          powerOn(vm); // the guest reboots, so its agent is gone for a boot time again
        });
      },
    },

    // §6: destroy.
    {
      method: 'DELETE',
      pattern: '/nodes/{node}/qemu/{vmid}',
      op: 'destroy',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        checkParams(ctx.params, {
          purge: { type: 'boolean', optional: true },
          'destroy-unreferenced-disks': { type: 'boolean', optional: true },
          skiplock: { type: 'boolean', optional: true },
        });
        const vm = state.getVm(vmid);
        if (vm.status === 'running') throw die(pveText.runningDestroyFailed(vmid));
        if (Number(vm.config.protection ?? 0) === 1) throw die(`can't remove VM ${vmid} - protection mode enabled`);
        return runTask('destroy', 'qmdestroy', vmid, ctx.user, async (log) => {
          // Locks are checked only inside the task; `suspended` is allowed (proxmox-api.md §6).
          state.checkLock(vm, ['suspended']);
          const clones = [...state.vms.values()].filter((other) => other.linkedFrom === vmid);
          if (clones.length > 0) {
            throw new Error(`base volume 'local-lvm:base-${vmid}-disk-0' is still in use by linked cloned`);
          }
          vm.config.lock = 'destroyed';
          log(`Removing image: 100% complete...done.`);
          await sleep(5);
          if (state.vms.get(vmid) === vm) state.vms.delete(vmid);
          agents.destroy(vmid);
          log(`purging VM ${vmid} from related configurations..`);
        });
      },
    },

    // §7: tasks.
    {
      method: 'GET',
      pattern: '/nodes/{node}/tasks/{upid}/status',
      op: 'task-status',
      handler: (ctx) => {
        const t = state.getTask(ctx.path.upid!);
        return {
          id: t.id,
          pid: t.pid,
          status: t.status,
          type: t.type,
          pstart: t.pstart,
          upid: t.upid,
          starttime: t.starttime,
          user: t.user,
          node: t.node,
          ...(t.tokenid ? { tokenid: t.tokenid } : {}),
          ...(t.status === 'stopped' ? { exitstatus: t.exitstatus } : {}),
        };
      },
    },
    {
      method: 'GET',
      pattern: '/nodes/{node}/tasks/{upid}/log',
      op: 'task-log',
      handler: (ctx) => {
        const t = state.getTask(ctx.path.upid!);
        const p = checkParams(ctx.params, {
          start: { type: 'integer', optional: true, minimum: 0 },
          limit: { type: 'integer', optional: true, minimum: 0 },
          download: { type: 'boolean', optional: true },
        });
        const start = (p.start as number | undefined) ?? 0;
        const limit = (p.limit as number | undefined) ?? 50;
        const lines = t.log.slice(start, start + limit).map((line, i) => ({ n: start + i + 1, t: line }));
        return new WithTotal(lines, t.log.length);
      },
    },

    // §8: guest agent (synchronous calls).
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/agent/ping',
      op: 'agent-ping',
      handler: (ctx) => agents.ping(vmidOf(ctx)),
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/agent/exec',
      op: 'agent-exec',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, {
          command: { type: 'string-list', optional: true },
          'input-data': { type: 'string', optional: true, maxLength: 65536 },
        });
        return agents.exec(vmid, p.command as string[] | undefined, p['input-data'] as string | undefined);
      },
    },
    // §8a: file-read (≤ 16 MiB from the start) and file-write (≤ 60 KiB, truncates).
    {
      method: 'GET',
      pattern: '/nodes/{node}/qemu/{vmid}/agent/file-read',
      op: 'agent-file-read',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, { file: { type: 'string' } });
        return agents.fileRead(vmid, p.file as string);
      },
    },
    {
      method: 'POST',
      pattern: '/nodes/{node}/qemu/{vmid}/agent/file-write',
      op: 'agent-file-write',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, {
          file: { type: 'string' },
          content: { type: 'string', maxLength: 61440 },
          encode: { type: 'boolean', optional: true },
        });
        agents.fileWrite(vmid, p.file as string, p.content as string, (p.encode as boolean | undefined) ?? true);
        return null;
      },
    },
    {
      method: 'GET',
      pattern: '/nodes/{node}/qemu/{vmid}/agent/exec-status',
      op: 'agent-exec-status',
      handler: (ctx) => {
        const vmid = vmidOf(ctx);
        const p = checkParams(ctx.params, { pid: { type: 'integer' } });
        return agents.execStatus(vmid, p.pid as number);
      },
    },
  ];
}

const CONFIG_SCHEMA: Schema = {
  name: { type: 'dns-name', optional: true },
  description: { type: 'string', optional: true, maxLength: 8192 },
  tags: { type: 'string', optional: true },
  cores: { type: 'integer', optional: true, minimum: 1, maximum: 1024 },
  memory: { type: 'string', optional: true },
  agent: { type: 'string', optional: true },
  ipconfig0: { type: 'string', optional: true },
  sshkeys: { type: 'string', optional: true },
  protection: { type: 'boolean', optional: true },
  onboot: { type: 'boolean', optional: true },
  delete: { type: 'string', optional: true },
  revert: { type: 'string', optional: true },
  digest: { type: 'string', optional: true },
  skiplock: { type: 'boolean', optional: true },
};

export function newVm(vmid: number, node: string, config: SimVm['config']): SimVm {
  return { vmid, node, config: { ...config }, status: 'stopped', qmpstatus: 'stopped', createdAt: Date.now() };
}

/** Split on `,` `;` or space, validate, lower-case, sort, de-duplicate, join with `;` (proxmox-api.md §4). */
export function normaliseTags(raw: string): string {
  const tags = raw.split(/[,; ]+/).filter(Boolean);
  const bad = tags.find((t) => !TAG.test(t));
  if (bad !== undefined) throw paramError({ tags: `invalid format - invalid characters in tag '${bad}'` });
  return [...new Set(tags.map((t) => t.toLowerCase()))].sort().join(';');
}

function applyConfig(vm: SimVm, changes: Record<string, unknown>): void {
  const next = { ...vm.config };
  for (const key of String(changes.delete ?? '')
    .split(/[,; ]+/)
    .filter(Boolean)) {
    delete next[key];
  }
  for (const [key, value] of Object.entries(changes)) {
    if (key === 'delete' || key === 'revert') continue;
    if (key === 'tags') {
      next.tags = normaliseTags(String(value));
      if (next.tags === '') delete next.tags;
    } else if (key === 'memory') {
      const m = /^(?:current=)?(\d+)$/.exec(String(value));
      if (!m || Number(m[1]) < 16) throw paramError({ memory: 'value must have a minimum value of 16' });
      next.memory = m[1]!; // a string since qemu-server 8.0.8 (proxmox-api.md §4)
    } else if (key === 'sshkeys') {
      // The value must itself be percent-encoded, spaces as %20 (proxmox-api.md §4).
      if (!/^[-%a-zA-Z0-9_.!~*'()]*$/.test(String(value))) throw paramError({ sshkeys: 'invalid urlencoded string' });
      next.sshkeys = decodeURIComponent(String(value));
    } else if (typeof value === 'boolean') {
      next[key] = value ? 1 : 0;
    } else {
      next[key] = value as string | number;
    }
  }
  vm.config = next;
}

function digestOf(vm: SimVm): string {
  const text = Object.keys(vm.config)
    .sort()
    .map((k) => `${k}: ${vm.config[k]}`)
    .join('\n');
  return createHash('sha1').update(text).digest('hex');
}

function resourceEntry(vm: SimVm, lagMs: number) {
  const c = vm.config;
  // name/status/template come from pvestatd's RRD data, refreshed every ~10 s; tags and lock
  // come from the config and are current (proxmox-api.md §3).
  const fresh = Date.now() - vm.createdAt < lagMs;
  return {
    id: `qemu/${vm.vmid}`,
    vmid: vm.vmid,
    type: 'qemu',
    node: vm.node,
    ...(fresh
      ? { status: 'unknown' }
      : { name: c.name ?? `VM ${vm.vmid}`, status: vm.status, template: isTemplate(vm) ? 1 : 0 }),
    ...(c.tags !== undefined ? { tags: c.tags } : {}),
    ...(c.lock !== undefined ? { lock: c.lock } : {}),
    maxcpu: Number(c.cores ?? 1),
    cpu: 0,
    maxmem: Number(c.memory ?? 512) * 1048576,
    mem: 0,
    maxdisk: 8589934592,
    disk: 0,
    uptime: vm.startedAt ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
    netin: 0,
    netout: 0,
    diskread: 0,
    diskwrite: 0,
  };
}
