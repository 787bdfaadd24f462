// Plain data types crossing the workflow boundary (inputs, query results, activity payloads).
import type { SandboxState } from './states';

export interface SandboxRequest {
  id: string;
  driver: string;
  template?: string;
  ttlSeconds: number;
  maxLifetimeSeconds: number;
  labels: Record<string, string>;
  sessionId?: string;
  /** Who asked (API caller, session, job); recorded in destroy reasons. */
  owner?: string;
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
  job?: JobStatus;
}

export interface SandboxInput {
  request: SandboxRequest;
  carried?: CarriedState;
}

export interface SandboxStatus {
  id: string;
  state: SandboxState;
  driver: string;
  template?: string;
  labels: Record<string, string>;
  sessionId?: string;
  isolation?: string;
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
