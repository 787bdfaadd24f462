// Plain data types crossing the workflow boundary (inputs, query results, activity payloads).
import type { SandboxLimits } from '../hypervisors/types';
import type { SandboxState } from './states';

export type { SandboxLimits };

export interface SandboxRequest {
  id: string;
  driver: string;
  template?: string;
  ttlSeconds: number;
  maxLifetimeSeconds: number;
  labels: Record<string, string>;
  sessionId?: string;
  /** The owner of the token that created it; only that owner (and admins) can see or touch it. */
  owner: string;
  /** Limits asked for (checked against the operator's maxima); unset fields = the driver's defaults. */
  limits?: SandboxLimits;
  /** How long the guest may take to answer after create. */
  readyTimeoutSeconds: number;
  /** Commands run in order as soon as the sandbox is RUNNING (AgentLab's jobs). */
  job?: JobSpec;
  /** History length that triggers a continue-as-new (Temporal's own suggestion also does). */
  maxHistoryEvents?: number;
}

export interface JobSpec {
  commands: string[][];
  /** Keep the sandbox until its lease ends instead of destroying it when the job is done. */
  keepalive: boolean;
  commandTimeoutSeconds?: number;
}

export type JobState = 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'TIMEOUT';

export interface JobStepResult extends ExecOutput {
  command: string[];
}

export interface JobStatus {
  state: JobState;
  steps: JobStepResult[];
  error?: string;
}

/** State carried across continue-as-new so a lease rollover keeps the VM. */
export interface CarriedState {
  state: 'RUNNING' | 'STOPPED';
  createdAt: number;
  expiresAt: number;
  seq: number;
  isolation: string;
  limits?: SandboxLimits;
  job?: JobStatus;
}

export interface SandboxInput {
  request: SandboxRequest;
  carried?: CarriedState;
}

export interface SandboxStatus {
  id: string;
  owner: string;
  state: SandboxState;
  driver: string;
  template?: string;
  labels: Record<string, string>;
  sessionId?: string;
  isolation?: string;
  /** The limits the driver enforced. */
  limits?: SandboxLimits;
  createdAt: string;
  expiresAt?: string;
  maxExpiresAt: string;
  destroyReason?: string;
  error?: string;
  /** Failure type of a permanent create/boot error (e.g. bad_spec, not_ready). */
  errorCode?: string;
  job?: JobStatus;
}

export interface TransitionEvent {
  sandboxId: string;
  seq: number;
  from: SandboxState | null;
  to: SandboxState;
  reason: string;
  at: string;
  /** Snapshot written to the registry row with the transition. */
  sandbox: SandboxStatus;
}

export interface ExecInput {
  command: string[];
  timeoutSeconds?: number;
  env?: Record<string, string>;
}

export interface ExecOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The exact bytes, only when the output is not valid UTF-8 (stdout/stderr then show U+FFFD). */
  stdoutBase64?: string;
  stderrBase64?: string;
  durationMs: number;
  timedOut: boolean;
}

export interface RenewLeaseInput {
  ttlSeconds: number;
}

export interface RenewLeaseResult {
  id: string;
  expiresAt: string;
  /** True when maxLifetimeSeconds cut the requested extension short. */
  capped: boolean;
}

export interface DestroyRequest {
  reason?: string;
  requestedBy?: string;
}

export interface SandboxResult {
  id: string;
  state: 'DESTROYED';
  destroyReason: string;
}
