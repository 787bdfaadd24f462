// Signals, updates and queries of the sandbox workflow: one definition shared by the API and the workflow.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  DestroyRequest,
  ExecInput,
  ExecOutput,
  FileOp,
  FileOpResult,
  KillExecResult,
  RenewLeaseInput,
  RenewLeaseResult,
  SandboxStatus,
} from './types';

export const getStatus = defineQuery<SandboxStatus>('getStatus');

// A signal so anyone (Temporal UI, `temporal workflow signal`, a fire-and-forget agent) can renew
// without waiting for an answer; invalid renewals are logged and ignored.
export const renewLeaseSignal = defineSignal<[RenewLeaseInput]>('renewLease');
// An update so the API can return the new expiresAt, or a validated rejection naming the state.
export const renewLeaseUpdate = defineUpdate<RenewLeaseResult, [RenewLeaseInput]>('renewLease');

// A signal: destroy must be accepted even when no worker is running.
export const destroySignal = defineSignal<[DestroyRequest]>('destroy');

// Sent by the reaper when the hypervisor no longer has the VM.
export const vmLostSignal = defineSignal<[{ detail?: string }]>('vmLost');

// Updates because the caller waits for the command's output / the new state.
export const execUpdate = defineUpdate<ExecOutput, [ExecInput]>('exec');
// The data plane: the workflow says whether, and keeps the record; bytes go through the registry.
/** A background command: answers once it is accepted and recorded; it runs on until it ends or is killed. */
export const startExecUpdate = defineUpdate<{ execId: string }, [ExecInput]>('startExec');
/** Ends a streaming or background command (its whole process tree); answers once it has ended. */
export const killExecUpdate = defineUpdate<KillExecResult, [{ execId: string }]>('killExec');
/** One file operation (write, read, list, remove, mkdir); results are small, bytes are in transfers. */
export const filesUpdate = defineUpdate<FileOpResult, [FileOp]>('files');
export const stopUpdate = defineUpdate<SandboxStatus, []>('stop');
export const startUpdate = defineUpdate<SandboxStatus, []>('start');

/** Resolves once the sandbox has left the provisioning states (RUNNING, FAILED, DESTROYED…). */
export const awaitReadyUpdate = defineUpdate<SandboxStatus, []>('awaitReady');

// --- sessions -----------------------------------------------------------------------------------
export interface SessionStatus {
  id: string;
  /** Filled in by the API from the workflow's SandboxOwner search attribute. */
  owner?: string;
  state: 'ACTIVE' | 'ENDED';
  heartbeatTimeoutSeconds: number;
  /** When the session ends unless a heartbeat arrives first. */
  deadline: string;
  sandboxes: string[];
  endReason?: string;
}

export const sessionHeartbeatSignal = defineSignal('heartbeat');
export const endSessionSignal = defineSignal<[{ reason?: string }]>('end');
// Sent by each sandbox workflow that belongs to the session, from inside that workflow, so the
// session learns of it even if the API crashed right after starting the sandbox.
export const sandboxJoinedSignal = defineSignal<[{ sandboxId: string }]>('sandboxJoined');
export const getSessionStatus = defineQuery<SessionStatus>('getSession');
