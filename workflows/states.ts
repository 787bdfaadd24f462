// The sandbox state machine: one table of allowed transitions, shared by the workflow and the API.

export const SANDBOX_STATES = [
  'REQUESTED',
  'PROVISIONING',
  'BOOTING',
  'RUNNING',
  'STOPPED',
  'EXPIRED',
  'FAILED',
  'DESTROYING',
  'DESTROYED',
] as const;

export type SandboxState = (typeof SANDBOX_STATES)[number];

export const TRANSITIONS: Readonly<Record<SandboxState, readonly SandboxState[]>> = {
  REQUESTED: ['PROVISIONING', 'FAILED', 'DESTROYING'],
  PROVISIONING: ['BOOTING', 'FAILED', 'DESTROYING'],
  BOOTING: ['RUNNING', 'FAILED', 'DESTROYING'],
  RUNNING: ['STOPPED', 'EXPIRED', 'DESTROYING'],
  STOPPED: ['RUNNING', 'EXPIRED', 'DESTROYING'],
  EXPIRED: ['DESTROYING'],
  FAILED: ['DESTROYING'],
  DESTROYING: ['DESTROYED'],
  DESTROYED: [],
};

export function canTransition(from: SandboxState, to: SandboxState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** States in which each operation is accepted; error messages list them. */
export const ALLOWED_STATES = {
  renewLease: ['RUNNING'],
  exec: ['RUNNING'],
  files: ['RUNNING'],
  stop: ['RUNNING'],
  start: ['STOPPED'],
  destroy: ['REQUESTED', 'PROVISIONING', 'BOOTING', 'RUNNING', 'STOPPED', 'EXPIRED', 'FAILED'],
} as const satisfies Record<string, readonly SandboxState[]>;

export type Operation = keyof typeof ALLOWED_STATES;

export function isAllowed(op: Operation, state: SandboxState): boolean {
  return (ALLOWED_STATES[op] as readonly SandboxState[]).includes(state);
}

const OPERATION_PHRASES: Record<Operation, string> = {
  renewLease: 'renew lease',
  exec: 'exec',
  files: 'use files',
  stop: 'stop',
  start: 'start',
  destroy: 'destroy',
};

/** "cannot renew lease in EXPIRED state; valid states: RUNNING" */
export function invalidStateMessage(op: Operation, state: SandboxState): string {
  return `cannot ${OPERATION_PHRASES[op]} in ${state} state; valid states: ${ALLOWED_STATES[op].join(', ')}`;
}
