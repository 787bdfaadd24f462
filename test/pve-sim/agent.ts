// The QEMU guest agent of each simulated VM. guest-exec really runs the command on this host
// (no shell, a per-VM temp dir as cwd, a kill timeout) so tests see real output (proxmox-api.md §8). Guest
// pids are the host pids, so the drivers' kill-tree script really finds and kills a process tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KILL_TREE } from '../../hypervisors/guest/exec';
import { die, pveText } from './errors';
import type { FaultBook, SimOp } from './faults';
import { agentEnabled, type SimState, type SimVm } from './state';

export interface AgentOptions {
  /** The agent answers only this long after the VM started ("boot time"). */
  bootMs: number;
  /** Host-side kill timeout for a guest command. */
  execTimeoutMs: number;
  /** qemu-ga caps captured output (GUEST_EXEC_MAX_OUTPUT) and sets out-truncated. */
  maxOutputBytes: number;
  /** Parent of the per-VM working directories. */
  workRoot: string;
}

interface ExecJob {
  child: ChildProcess;
  exited: boolean;
  exitcode?: number;
  signal?: number;
  out: Buffer[];
  err: Buffer[];
  outBytes: number;
  errBytes: number;
  outTruncated: boolean;
  errTruncated: boolean;
  /** Injected 'exec-hang': the status never flips to exited. */
  hang: boolean;
}

const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };

export class GuestAgents {
  private readonly jobs = new Map<number, Map<number, ExecJob>>();

  constructor(
    private readonly opts: AgentOptions,
    private readonly state: SimState,
    private readonly faults: FaultBook,
  ) {}

  /** PVE's pre-checks, in its order, then the injected agent faults (proxmox-api.md §8). */
  private reachAgent(vmid: number, op: SimOp, qmpCommand: string): SimVm {
    const vm = this.state.getVm(vmid);
    if (!agentEnabled(vm)) throw die(pveText.noAgentConfigured);
    if (vm.status !== 'running') throw die(pveText.agentVmNotRunning(vmid));
    const booted = vm.startedAt !== undefined && Date.now() - vm.startedAt >= this.opts.bootMs;
    // A paused guest cannot answer guest-ping either.
    if (!booted || vm.qmpstatus !== 'running' || this.faults.take(op, ['agent-down'], vmid)) {
      throw die(pveText.agentNotRunning);
    }
    if (this.faults.take(op, ['qmp-timeout'], vmid)) throw die(pveText.qmpFailed(vmid, qmpCommand, 'got timeout'));
    return vm;
  }

  ping(vmid: number): { result: Record<string, never> } {
    this.reachAgent(vmid, 'agent-ping', 'guest-ping');
    return { result: {} };
  }

  async exec(vmid: number, command: string[] | undefined, inputData: string | undefined): Promise<{ pid: number }> {
    if (!command?.length) throw die('command or input-data (or both) required');
    this.reachAgent(vmid, 'agent-exec', 'guest-exec');
    const [program, ...args] = this.withinGuest(vmid, command) as [string, ...string[]];
    const cwd = this.workdir(vmid);
    const child = spawn(program, args, {
      cwd,
      env: { PATH: GUEST_PATH, HOME: cwd, LANG: 'C.UTF-8' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so stop/destroy can kill the whole tree
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      const reason =
        (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : String((err as Error).message);
      throw die(
        pveText.qmpFailed(
          vmid,
          'guest-exec',
          `Guest agent command failed, error was 'Failed to execute child process "${program}" (${reason})'`,
        ),
      );
    }
    const job: ExecJob = {
      child,
      exited: false,
      out: [],
      err: [],
      outBytes: 0,
      errBytes: 0,
      outTruncated: false,
      errTruncated: false,
      hang: this.faults.take('agent-exec', ['exec-hang'], vmid) !== undefined,
    };
    const cap = this.opts.maxOutputBytes;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (job.outBytes + chunk.length > cap) job.outTruncated = true;
      const keep = chunk.subarray(0, Math.max(0, cap - job.outBytes));
      job.out.push(keep);
      job.outBytes += keep.length;
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (job.errBytes + chunk.length > cap) job.errTruncated = true;
      const keep = chunk.subarray(0, Math.max(0, cap - job.errBytes));
      job.err.push(keep);
      job.errBytes += keep.length;
    });
    const killTimer = setTimeout(() => killGroup(child), this.opts.execTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      job.exited = true;
      if (signal) job.signal = SIGNAL_NUMBERS[signal] ?? 9;
      else job.exitcode = code ?? 0;
    });
    child.stdin!.on('error', () => {}); // the command may exit before reading its input
    child.stdin!.end(inputData ?? '');
    const pid = child.pid!;
    this.jobsOf(vmid).set(pid, job);
    return { pid };
  }

  execStatus(vmid: number, pid: number): Record<string, unknown> {
    this.reachAgent(vmid, 'agent-exec-status', 'guest-exec-status');
    const job = this.jobsOf(vmid).get(pid);
    if (!job) throw die(pveText.qmpFailed(vmid, 'guest-exec-status', "Invalid parameter 'pid'"));
    if (!job.exited || job.hang) return { exited: 0 };
    // qemu-ga forgets the pid after the first exited answer (proxmox-api.md §8).
    this.jobsOf(vmid).delete(pid);
    // PVE has already base64-decoded out-data/err-data; booleans are 0/1.
    const answer: Record<string, unknown> = {
      exited: 1,
      'out-data': Buffer.concat(job.out).toString('utf8'),
      'err-data': Buffer.concat(job.err).toString('utf8'),
    };
    if (job.signal !== undefined) answer.signal = job.signal;
    else answer.exitcode = job.exitcode;
    if (job.outTruncated) answer['out-truncated'] = 1;
    if (job.errTruncated) answer['err-truncated'] = 1;
    return answer;
  }

  /** Power-off: every guest process dies and the agent forgets its pids. */
  powerOff(vmid: number): void {
    for (const job of this.jobsOf(vmid).values()) if (!job.exited) killGroup(job.child);
    this.jobs.delete(vmid);
  }

  /** Destroy: the VM's disk (its working dir) goes too. */
  destroy(vmid: number): void {
    this.powerOff(vmid);
    rmSync(join(this.opts.workRoot, `vm-${vmid}`), { recursive: true, force: true });
  }

  close(): void {
    for (const vmid of [...this.jobs.keys()]) this.powerOff(vmid);
  }

  /**
   * A real guest sees only its own processes; these share the host's pid space. So a kill-tree
   * script may reach only a running command of this VM (a stale pid could by now be anyone's).
   */
  private withinGuest(vmid: number, command: string[]): string[] {
    if (command[2] !== KILL_TREE) return command;
    const target = this.jobsOf(vmid).get(Number(command[3]));
    return target && !target.exited ? command : ['true'];
  }

  private workdir(vmid: number): string {
    const dir = join(this.opts.workRoot, `vm-${vmid}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private jobsOf(vmid: number): Map<number, ExecJob> {
    let jobs = this.jobs.get(vmid);
    if (!jobs) this.jobs.set(vmid, (jobs = new Map()));
    return jobs;
  }
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
