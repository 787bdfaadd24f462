// A VM's guest agent through the PVE API (agent/exec, agent/exec-status), as the exec contract's
// runner drives it (guest/exec.ts). Reference: docs/proxmox-api.md §8.
import { HypervisorError } from '../errors';
import type { GuestAgent, GuestExecStatus } from '../guest/exec';
import { isTransientPveError, PveApiError, sleep, type PveClient } from './client';

/** agent/exec-status's answer: PVE has already decoded the output; its booleans are 0/1. */
interface PveExecStatus {
  exited: number | boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: number | boolean;
  'err-truncated'?: number | boolean;
}

const EXEC_PID_FORGOTTEN = /Invalid parameter 'pid'|PID \d+ does not exist/;

export class PveGuestAgent implements GuestAgent {
  readonly pollMs = { first: 20, max: 500 };

  constructor(
    private readonly client: PveClient,
    private readonly vm: { node: string; vmid: number },
    /** Pauses between tries of a status request that failed transiently. */
    private readonly retryDelaysMs: number[],
  ) {}

  async exec(argv: string[], env?: Record<string, string>): Promise<number> {
    // agent/exec has no environment parameter: env(1) in the guest sets it (-i: it replaces the
    // agent's, as qemu-ga's own env argument does). Names are checked (exec-plan.ts), so no
    // assignment can be taken for the program.
    const command = env ? ['env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] : argv;
    // Not idempotent: the client repeats it only when PVE never received it.
    const { pid } = await this.client.post<{ pid: number }>(this.path('exec'), { command });
    return pid;
  }

  async status(pid: number): Promise<GuestExecStatus> {
    for (let failures = 0; ; failures++) {
      let answer: PveExecStatus;
      try {
        // Not repeated by the client: qemu-ga forgets the pid after one exited answer (proxmox-api.md §8).
        // A lost answer is tried again here, and a forgotten pid then says the result is gone.
        answer = await this.client.get<PveExecStatus>(this.path('exec-status'), { pid }, { idempotent: false });
      } catch (err) {
        if (err instanceof PveApiError && EXEC_PID_FORGOTTEN.test(err.pveMessage)) {
          const what = `exec result lost (pid ${pid} in VM ${this.vm.vmid}): ${err.pveMessage}`;
          throw new HypervisorError(what, 'exec_result_lost', false);
        }
        const delay = this.retryDelaysMs[failures];
        if (!isTransientPveError(err) || delay === undefined) throw err;
        await sleep(delay);
        continue;
      }
      return {
        exited: Number(answer.exited) === 1,
        exitcode: answer.exitcode,
        signal: answer.signal,
        stdout: Buffer.from(answer['out-data'] ?? '', 'utf8'),
        stderr: Buffer.from(answer['err-data'] ?? '', 'utf8'),
        stdoutTruncated: Number(answer['out-truncated'] ?? 0) === 1,
        stderrTruncated: Number(answer['err-truncated'] ?? 0) === 1,
      };
    }
  }

  private path(call: 'exec' | 'exec-status'): string {
    return `/nodes/${this.vm.node}/qemu/${this.vm.vmid}/agent/${call}`;
  }
}
