// Plain data types crossing the workflow boundary (inputs, query results, activity payloads).
import type { FileEntry, SandboxLimits } from '../hypervisors/types';
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
  /**
   * The output goes to the registry's exec_output as it is produced (the data plane), not into
   * the result: the update's answer then carries no output, only the exit.
   */
  stream?: boolean;
  /** With startExecUpdate: runs on after the update has answered; its output streams like `stream`. */
  background?: boolean;
  /** Small standard input (capped by the API: it travels through history). */
  stdinBase64?: string;
  /** Chosen by the API so it can follow the output before the command ends; else the update id. */
  execId?: string;
}

/** How an exec was asked for (the execs table's mode). */
export type ExecMode = 'wait' | 'stream' | 'background';

export interface KillExecResult {
  execId: string;
  /** false: it had already ended (or never ran in this sandbox). */
  killed: boolean;
}

/** File operations, each one update on the sandbox workflow; the bytes travel through transfers. */
export type FileOp =
  | { op: 'write'; path: string; mode?: number; transferId: string; size: number; sha256: string }
  | { op: 'read'; path: string; transferId: string }
  | { op: 'list'; path: string; limit: number }
  | { op: 'remove'; path: string; recursive: boolean }
  | { op: 'mkdir'; path: string; parents: boolean };

export type FileOpResult =
  | { op: 'write'; path: string; size: number; sha256: string }
  | { op: 'read'; path: string; kind: 'file' | 'directory'; size: number; sha256: string }
  | { op: 'list'; path: string; entries: FileEntry[]; truncated: boolean }
  | { op: 'remove'; path: string; existed: boolean }
  | { op: 'mkdir'; path: string };

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
