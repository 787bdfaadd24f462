// A VM's guest agent through the PVE API (agent/exec, agent/exec-status), as the exec contract's
// runners drive it (guest/exec.ts, guest/stream-exec.ts). Reference: docs/proxmox-api.md §8.
import { randomBytes } from 'node:crypto';
import { HypervisorError } from '../errors';
import { killTree, type GuestAgent, type GuestExecStatus } from '../guest/exec';
import type { OutputFiles, StreamingGuestAgent } from '../guest/stream-exec';
import { isTransientPveError, PveApiError, sleep, type PveClient } from './client';
import type { PveFiles } from './files';

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
    protected readonly vm: { node: string; vmid: number },
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
        // PVE's JSON carries each output byte as one character U+0000..U+00FF (proxmox-api.md §8a).
        stdout: Buffer.from(answer['out-data'] ?? '', 'latin1'),
        stderr: Buffer.from(answer['err-data'] ?? '', 'latin1'),
        stdoutTruncated: Number(answer['out-truncated'] ?? 0) === 1,
        stderrTruncated: Number(answer['err-truncated'] ?? 0) === 1,
      };
    }
  }

  private path(call: 'exec' | 'exec-status'): string {
    return `/nodes/${this.vm.node}/qemu/${this.vm.vmid}/agent/${call}`;
  }
}

/**
 * Up to $3 bytes of each output file from its offset ($1, $2): stdout's on stdout, stderr's on
 * stderr, so one agent/exec answers both. A file not there yet reads as nothing.
 */
const TAIL_SCRIPT =
  'tail -c +$(($1 + 1)) "$0.out" 2>/dev/null | head -c $3; tail -c +$(($2 + 1)) "$0.err" 2>/dev/null | head -c $3 >&2';

/** How long one TAIL_SCRIPT may take: a guest that stops answering must not hold the exec past its deadline. */
const TAIL_TIMEOUT_MS = 30_000;

/**
 * What a streamed exec needs, through PVE. agent/exec's input-data is no way to send bytes (PVE
 * base64-encodes the parameter's characters, and its body cap is 64 KiB), so stdin is uploaded to a
 * guest file first and the command reads it from there. A poll is three requests or more (status,
 * then an exec of TAIL_SCRIPT and its status): PVE has no guest-file-seek/read of its own.
 */
export class PveStreamingAgent extends PveGuestAgent implements StreamingGuestAgent {
  readonly tailMs = { first: 10, max: 100 };
  readonly readChunkBytes = 1024 * 1024;

  constructor(
    client: PveClient,
    vm: { node: string; vmid: number },
    retryDelaysMs: number[],
    private readonly files: PveFiles,
  ) {
    super(client, vm, retryDelaysMs);
  }

  async start(argv: string[], env: Record<string, string>, stdin?: Buffer): Promise<number> {
    if (!stdin) return this.exec(argv, env);
    const input = `/tmp/.hourglass-stdin-${randomBytes(12).toString('hex')}`;
    await this.files.writeFile(
      input,
      (async function* () {
        yield stdin;
      })(),
    );
    // The shell opens the file as stdin, removes it, then becomes the command.
    return this.exec(['/bin/sh', '-c', 'exec <"$0" && rm -f "$0" && exec "$@"', input, ...argv], env);
  }

  outputs(stdoutPath: string, _stderrPath: string): OutputFiles {
    const base = stdoutPath.replace(/\.out$/, '');
    return {
      poll: async (pid, offsets, max, signal) => {
        const status = pid !== null ? await this.status(pid) : undefined;
        const args = [base, String(offsets[0]), String(offsets[1]), String(max)];
        const tail = await this.exec(['/bin/sh', '-c', TAIL_SCRIPT, ...args]);
        const until = Date.now() + TAIL_TIMEOUT_MS;
        try {
          for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
            const done = await this.status(tail);
            const none = Buffer.alloc(0);
            if (done.exited) return { status, chunks: [done.stdout ?? none, done.stderr ?? none] };
            if (Date.now() >= until) {
              const what = `reading a command's output in VM ${this.vm.vmid} took over ${TAIL_TIMEOUT_MS / 1000} s`;
              throw new HypervisorError(what, 'exec_output_stalled', false);
            }
            await sleep(pause, signal);
          }
        } catch (err) {
          await killTree(this, tail); // not exited (its status would have returned): do not leave it behind
          throw err;
        }
      },
      close: async () => {},
    };
  }
}
