// The guest agent of a libvirt sandbox, for guest/exec.ts: every call is a virsh process.
import { BadSpecError, BusyError, HypervisorError, NotFoundError } from '../errors';
import type { GuestAgent } from '../guest/exec';
import { decodeExecStatus, guestExecArguments, type QgaExecStatus } from '../guest/qga-exec';
import type { Virsh } from './virsh';

/**
 * `domainState` says what libvirt calls the domain now: a command failing on a guest that is not
 * running is Busy (retry later), not a failure. The signal is left to the runner (a killed virsh
 * would fail the kill that follows a cancellation).
 */
export function virshGuestAgent(virsh: Virsh, id: string, domainState: () => Promise<string>): GuestAgent {
  const command = async (cmd: object): Promise<unknown> => {
    try {
      return await virsh.agentCommand(id, cmd, 10);
    } catch (err) {
      if (!(err instanceof HypervisorError) || err instanceof NotFoundError || err instanceof BadSpecError) throw err;
      const state = await domainState();
      if (state !== 'running') throw new BusyError(`sandbox ${id} is ${state}: ${err.message}`);
      throw err;
    }
  };
  return {
    exec: async (argv, env) => {
      const answer = await command({ execute: 'guest-exec', arguments: guestExecArguments(argv, env) });
      return (answer as { pid: number }).pid;
    },
    status: async (pid) =>
      decodeExecStatus((await command({ execute: 'guest-exec-status', arguments: { pid } })) as QgaExecStatus),
    // Poll gently: each poll is a process.
    pollMs: { first: 5, max: 250 },
  };
}
