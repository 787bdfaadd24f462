// The QEMU guest agent of each simulated VM. guest-exec really runs the command on this host
// (no shell; in a mount namespace where the VM's own /root and /tmp are in place, guest-fs.ts; a kill
// timeout) so tests see real output (proxmox-api.md §8). Guest pids are the host pids, so the
// drivers' kill-tree script really finds and kills a process tree. file-read and file-write act on
// the VM's files as PVE's do (§8a): 16 MiB read cap, 60 KiB writes that truncate, bytes as Latin-1.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KILL_TREE } from '../../hypervisors/guest/exec';
import { die, pveText } from './errors';
import type { FaultBook, SimOp } from './faults';
import { agentEnabled, type SimState, type SimVm } from './state';
import { GuestFs } from './guest-fs';

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
/** PVE's agent/file-read cap and the guest-file-read size it asks for (Agent.pm). */
const FILE_READ_MAX = 16 * 1024 * 1024;
const FILE_READ_CHUNK = 1024 * 1024;
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
};

/** A character PVE's encode_base64 cannot take as a byte. */
const beyondLatin1 = (text: string) => [...text].some((c) => c.codePointAt(0)! > 0xff);

/** glib's spawn looks the program up in the agent's PATH (or takes a path as is). */
function findProgram(program: string): boolean {
  const candidates = program.includes('/') ? [program] : GUEST_PATH.split(':').map((d) => join(d, program));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
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
    // PVE base64-encodes the parameter's characters as bytes: one above U+00FF kills its perl.
    if (inputData !== undefined && beyondLatin1(inputData)) throw die(pveText.wideCharacter);
    this.reachAgent(vmid, 'agent-exec', 'guest-exec');
    const [program, ...args] = this.withinGuest(vmid, command) as [string, ...string[]];
    const fs = this.guestFs(vmid);
    if (!findProgram(program)) {
      const failed = `Failed to execute child process "${program}" (No such file or directory)`;
      throw die(pveText.qmpFailed(vmid, 'guest-exec', `Guest agent command failed, error was '${failed}'`));
    }
    const [file, ...argv] = fs.guestCommand([program, ...args]) as [string, ...string[]];
    const child = spawn(file, argv, {
      cwd: fs.dir,
      env: { PATH: GUEST_PATH, HOME: '/root', LANG: 'C.UTF-8' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so stop/destroy can kill the whole tree
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
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
    child.stdin!.end(Buffer.from(inputData ?? '', 'latin1'));
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
    // PVE has already base64-decoded out-data/err-data: its JSON carries each byte as one
    // character (U+0000..U+00FF, encoded in UTF-8 on the wire); booleans are 0/1.
    const answer: Record<string, unknown> = {
      exited: 1,
      'out-data': Buffer.concat(job.out).toString('latin1'),
      'err-data': Buffer.concat(job.err).toString('latin1'),
    };
    if (job.signal !== undefined) answer.signal = job.signal;
    else answer.exitcode = job.exitcode;
    if (job.outTruncated) answer['out-truncated'] = 1;
    if (job.errTruncated) answer['err-truncated'] = 1;
    return answer;
  }

  /** agent/file-read: up to 16 MiB read in 1 MiB guest-file-reads; `truncated` when no read hit EOF. */
  fileRead(vmid: number, file: string): Record<string, unknown> {
    this.reachAgent(vmid, 'agent-file-read', 'guest-file-open');
    const fd = this.openGuestFile(vmid, file, 'r');
    const chunks: Buffer[] = [];
    let total = 0;
    let eof = false;
    try {
      while (total < FILE_READ_MAX && !eof) {
        const buf = Buffer.alloc(FILE_READ_CHUNK);
        const n = readSync(fd, buf, 0, FILE_READ_CHUNK, null);
        chunks.push(buf.subarray(0, n));
        total += n;
        eof = n < FILE_READ_CHUNK; // fread sets EOF only on a short read
      }
    } finally {
      closeSync(fd);
    }
    return {
      content: Buffer.concat(chunks).toString('latin1'),
      'bytes-read': total,
      ...(eof ? {} : { truncated: 1 }),
    };
  }

  /** agent/file-write: opens with mode wb (truncates), one write, close. */
  fileWrite(vmid: number, file: string, content: string, encode: boolean): void {
    if (encode && beyondLatin1(content)) throw die(pveText.wideCharacter);
    this.reachAgent(vmid, 'agent-file-write', 'guest-file-open');
    const bytes = encode ? Buffer.from(content, 'latin1') : Buffer.from(content, 'base64');
    const fd = this.openGuestFile(vmid, file, 'wb');
    try {
      writeSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
  }

  private openGuestFile(vmid: number, file: string, mode: 'r' | 'wb'): number {
    const host = this.guestFs(vmid).hostPath(file);
    try {
      if (host === null) throw Object.assign(new Error('outside'), { code: 'EACCES' });
      return openSync(host, mode === 'r' ? 'r' : 'w', 0o666);
    } catch (err) {
      const reason = ERRNO_TEXT[(err as NodeJS.ErrnoException).code ?? ''] ?? 'Input/output error';
      throw die(
        pveText.qmpFailed(vmid, 'guest-file-open', `failed to open file '${file}' (mode: '${mode}'): ${reason}`),
      );
    }
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

  private guestFs(vmid: number): GuestFs {
    return new GuestFs(join(this.opts.workRoot, `vm-${vmid}`));
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
