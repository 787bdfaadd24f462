// Why a sandbox ended, as a short fixed word an operator filters the Temporal UI's list by
// (the SandboxEndReason search attribute). The free-text destroyReason keeps the detail (who, what
// failed); these stay few so that `SandboxEndReason="…"` finds every sandbox that ended that way.
// Pure: the workflow and the API import it.

export const EndReason = {
  LeaseExpired: 'lease expired',
  /** The lease ran to the sandbox's max lifetime (renewals are capped there). */
  MaxLifetime: 'max lifetime',
  /** A destroy through the API (it always names who asked). */
  DestroyedByApi: 'destroyed by api',
  /** A destroy signal that names nobody (the Temporal UI, `temporal workflow signal`). */
  DestroyRequested: 'destroy requested',
  SessionEnded: 'session ended',
  /** The reaper found the VM gone from its hypervisor. */
  VmLost: 'vm lost',
  Cancelled: 'cancelled',
  /** Set on the force-destroy workflow: the sandbox's own was terminated and can record nothing. */
  ForceDestroyed: 'force destroyed',
  WorkflowEnded: 'workflow ended',
} as const;

/** `job completed`, `job failed`, `job timeout`. */
export const jobEnded = (jobState: string): string => `job ${jobState.toLowerCase()}`;

/** `create failed: bad_spec`: the failure type, not its message, so that it groups. */
export const createFailed = (failureCode: string | undefined): string => `create failed: ${failureCode ?? 'error'}`;
