// The exec plan of a VM guest (qemu, libvirt, proxmox): exec-plan.ts's, starting in VM_GUEST_HOME,
// the workspace, as a process sandbox's commands start in theirs. qemu-ga's guest-exec has no
// working directory of its own (QEMU 7.2): it would be wherever the agent runs, usually /.
import type { ExecRequest } from '../types';
import { LAUNCH_SCRIPT, VM_GUEST_HOME } from './contract';
import { planExec, type ExecPlan } from './exec-plan';

export function planVmExec(id: string, req: ExecRequest): ExecPlan {
  const plan = planExec(id, req, VM_GUEST_HOME);
  // The same launch script (contract.ts), after a cd: still one shell, which becomes the program.
  // cd exports OLDPWD, which is not the command's to see (the contract's environment is exact).
  const script = `cd ${VM_GUEST_HOME} && unset OLDPWD && ${LAUNCH_SCRIPT}`;
  return { ...plan, argv: ['/bin/sh', '-c', script, ...plan.argv.slice(3)] };
}
