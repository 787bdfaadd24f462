// The guest agent of a libvirt sandbox, for guest/exec.ts and guest/stream-exec.ts: every call is
// a virsh process (~20-60 ms), so a streamed exec's poll sends its five commands in one.
import { BadSpecError, BusyError, HypervisorError, NotFoundError } from '../errors';
import type { GuestAgent } from '../guest/exec';
import { decodeExecStatus, guestExecArguments, type QgaExecStatus } from '../guest/qga-exec';
import { QgaFiles } from '../guest/qga-files';
import type { StreamingGuestAgent } from '../guest/stream-exec';
import type { Virsh } from './virsh';

/**
 * Bytes per guest-file-read/write. The command travels on virsh's stdin (not argv: file bytes and
 * env values are no one else's to read), then as one libvirt RPC to qemu-ga. Measured under TCG
 * (a guest-file-write through virsh): 64 KiB 0.7 s, 128 KiB 1.0 s, 192 KiB and more fail with
 * "Guest agent not available for now". So 96 KiB, and ~0.1 MB/s: libvirt is the slow way in.
 */
export const LIBVIRT_FILE_CHUNK_BYTES = 96 * 1024;

/** Seconds qemu-ga may take over one command (a 1 MiB write under TCG takes well under one). */
const AGENT_TIMEOUT_S = 30;

type AgentCall = { execute: string; arguments?: Record<string, unknown> };

/**
 * `domainState` says what libvirt calls the domain now: a command failing on a guest that is not
 * running is Busy (retry later), not a failure. The signal is left to the runner (a killed virsh
 * would fail the kill that follows a cancellation).
 */
export function virshAgentCalls(virsh: Virsh, id: string, domainState: () => Promise<string>) {
  const busyIfStopped = async (err: unknown): Promise<never> => {
    if (!(err instanceof HypervisorError) || err instanceof NotFoundError || err instanceof BadSpecError) throw err;
    const state = await domainState();
    if (state !== 'running') throw new BusyError(`sandbox ${id} is ${state}: ${err.message}`);
    throw err;
  };
  return {
    one: (call: AgentCall) => virsh.agentCommand(id, call, AGENT_TIMEOUT_S).catch(busyIfStopped),
    many: (calls: AgentCall[]) => virsh.agentCommands(id, calls, AGENT_TIMEOUT_S).catch(busyIfStopped),
  };
}

export function virshGuestAgent(virsh: Virsh, id: string, domainState: () => Promise<string>): GuestAgent {
  const calls = virshAgentCalls(virsh, id, domainState);
  return {
    exec: async (argv, env) => {
      const answer = await calls.one({ execute: 'guest-exec', arguments: guestExecArguments(argv, env) });
      return (answer as { pid: number }).pid;
    },
    status: async (pid) =>
      decodeExecStatus((await calls.one({ execute: 'guest-exec-status', arguments: { pid } })) as QgaExecStatus),
    // Poll gently: each poll is a process.
    pollMs: { first: 5, max: 250 },
  };
}

/** qemu-ga's file commands through virsh. */
export function virshQgaFiles(virsh: Virsh, id: string, domainState: () => Promise<string>): QgaFiles {
  const calls = virshAgentCalls(virsh, id, domainState);
  return new QgaFiles(
    id,
    (execute, args) => calls.one({ execute, ...(args ? { arguments: args } : {}) }),
    LIBVIRT_FILE_CHUNK_BYTES,
    (commands) => calls.many(commands),
  );
}

export function virshStreamingAgent(virsh: Virsh, id: string, domainState: () => Promise<string>): StreamingGuestAgent {
  const calls = virshAgentCalls(virsh, id, domainState);
  const files = virshQgaFiles(virsh, id, domainState);
  return {
    ...virshGuestAgent(virsh, id, domainState),
    start: async (argv, env, stdin) => {
      const args = { ...guestExecArguments(argv, env), ...(stdin ? { 'input-data': stdin.toString('base64') } : {}) };
      return ((await calls.one({ execute: 'guest-exec', arguments: args })) as { pid: number }).pid;
    },
    outputs: (out, err) => files.outputs(out, err),
    // A poll is one virsh process: back-to-back polls are already ~20-60 ms apart.
    tailMs: { first: 1, max: 30 },
    readChunkBytes: files.chunkBytes,
  };
}
