// The simulated node's state: VM configs, power state and async tasks with real-format UPIDs.
import { die, paramError, pveText } from './errors';

export type PowerStatus = 'running' | 'stopped';
export type QmpStatus = 'running' | 'paused' | 'stopped';

export interface SimVm {
  vmid: number;
  node: string;
  /** The config file: name, description, tags, cores, memory, agent, scsi0, lock, template… */
  config: Record<string, string | number>;
  status: PowerStatus;
  qmpstatus: QmpStatus;
  startedAt?: number;
  createdAt: number;
  /** Template this VM is a linked clone of (destroying that template is refused while we exist). */
  linkedFrom?: number;
}

export interface SimTask {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  pid: number;
  pstart: number;
  starttime: number;
  status: 'running' | 'stopped';
  exitstatus?: string;
  log: string[];
}

/** What a task body may return: extra log lines and a warnings count. */
export interface TaskOutcome {
  warnings?: number;
}

export interface TaskTiming {
  minMs: number;
  maxMs: number;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/** UPID:{node}:{pid}:{pstart}:{starttime}:{type}:{id}:{user}: (note the trailing colon; proxmox-api.md §7). */
const NODE_NAME = String.raw`[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`;
export const UPID_PATTERN = new RegExp(
  String.raw`^UPID:(${NODE_NAME}):([0-9A-F]{8}):([0-9A-F]{8,9}):([0-9A-F]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$`,
);

export function isTemplate(vm: SimVm): boolean {
  return Number(vm.config.template ?? 0) === 1;
}

/** `agent: [enabled=]0|1[,...]` (proxmox-api.md §4). */
export function agentEnabled(vm: SimVm): boolean {
  const raw = String(vm.config.agent ?? '0');
  const first = raw.split(',')[0] ?? '0';
  return (first.startsWith('enabled=') ? first.slice('enabled='.length) : first) === '1';
}

export class SimState {
  readonly vms = new Map<number, SimVm>();
  private readonly tasks = new Map<string, SimTask>();
  private nextPid = 0x2f1a3c;
  private readonly pstartBase = 0x01a2b3c4;
  private readonly pendingTimers = new Set<NodeJS.Timeout>();

  constructor(
    readonly node: string,
    private readonly timing: TaskTiming,
  ) {}

  getVm(vmid: number): SimVm {
    const vm = this.vms.get(vmid);
    if (!vm) throw die(pveText.configMissing(this.node, vmid));
    return vm;
  }

  /** `check_lock`: any persistent lock refuses the operation, except those listed (proxmox-api.md §9). */
  checkLock(vm: SimVm, allowed: readonly string[] = []): void {
    const lock = vm.config.lock;
    if (lock !== undefined && !allowed.includes(String(lock))) throw die(pveText.locked(String(lock)));
  }

  /** Lowest free id in 100..1000000; nothing is reserved (proxmox-api.md §3). */
  nextFreeVmid(): number {
    for (let id = 100; id <= 1_000_000; id++) if (!this.vms.has(id)) return id;
    throw die('unable to get any free VMID in range [100, 1000000]');
  }

  /** Starts an async task: the body runs after a short random delay, its throw becomes the exitstatus. */
  startTask(
    type: string,
    id: string | number,
    user: string,
    body: (log: (line: string) => void) => Promise<TaskOutcome | void> | TaskOutcome | void,
  ): string {
    const pid = this.nextPid++;
    const starttime = Math.floor(Date.now() / 1000);
    const fields = [this.node, hex8(pid), hex8(this.pstartBase + pid), hex8(starttime), type, id, user];
    const upid = `UPID:${fields.join(':')}:`;
    const [userPart, tokenid] = user.split('!');
    const task: SimTask = {
      upid,
      node: this.node,
      type,
      id: String(id),
      user: userPart ?? user,
      tokenid,
      pid,
      pstart: this.pstartBase + pid,
      starttime,
      status: 'running',
      log: [],
    };
    this.tasks.set(upid, task);
    const { minMs, maxMs } = this.timing;
    const delay = minMs + Math.random() * Math.max(0, maxMs - minMs);
    const timer = setTimeout(async () => {
      this.pendingTimers.delete(timer);
      const log = (line: string) => task.log.push(line);
      try {
        const outcome = (await body(log)) || {};
        const warnings = outcome.warnings ?? 0;
        task.exitstatus = warnings > 0 ? `WARNINGS: ${warnings}` : 'OK';
        log(warnings > 0 ? `TASK WARNINGS: ${warnings}` : 'TASK OK');
      } catch (err) {
        // exitstatus is the error text with newlines replaced by spaces (proxmox-api.md §7).
        const text = (err instanceof Error ? err.message : String(err)).trim().replace(/\n/g, ' ');
        task.exitstatus = text;
        log(`TASK ERROR: ${text}`);
      }
      task.status = 'stopped';
    }, delay);
    this.pendingTimers.add(timer);
    return upid;
  }

  getTask(upid: string): SimTask {
    if (!UPID_PATTERN.test(upid)) throw paramError({ upid: 'unable to parse worker upid' });
    const task = this.tasks.get(upid);
    if (!task) throw paramError({ upid: 'no such task' });
    return task;
  }

  close(): void {
    for (const t of this.pendingTimers) clearTimeout(t);
    this.pendingTimers.clear();
  }
}
