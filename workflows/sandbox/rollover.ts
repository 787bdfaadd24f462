// Continue-as-new: a sandbox lives for days, its history must not. When history grows long the
// run hands its state to a new run, after every handler and registry write in flight is done,
// and the VM and the lease go on untouched.
import { allHandlersFinished, condition, continueAsNew, workflowInfo } from '@temporalio/workflow';
import type { sandboxWorkflow } from '../sandbox';
import type { CarriedState } from '../types';
import type { SandboxRun } from './run';

/** Default history length that triggers a continue-as-new (before Temporal's own suggestion). */
const DEFAULT_MAX_HISTORY_EVENTS = 10_000;
/** Past these (Temporal's hard limits: 51,200 events, 50 MB) new execs/stops/starts wait for the rollover. */
const DRAIN_HISTORY_EVENTS = 20_000;
const DRAIN_HISTORY_BYTES = 20 * 1024 * 1024;

/** History asks for a new run, and no job or background command runs (they are not handlers: they would be cut). */
export function rolloverDue(run: SandboxRun): boolean {
  const info = workflowInfo();
  const maxEvents = run.request.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
  const busy = run.job?.state === 'RUNNING' || run.execs.background.size > 0;
  return (info.continueAsNewSuggested || info.historyLength > maxEvents) && !busy;
}

/** History is near its hard limits: take no new long work until the rollover. */
export function nearHistoryLimit(): boolean {
  const info = workflowInfo();
  return info.historyLength > DRAIN_HISTORY_EVENTS || info.historySize > DRAIN_HISTORY_BYTES;
}

/** The rest of the lease in a new run. */
export async function rollOver(run: SandboxRun): Promise<never> {
  await condition(allHandlersFinished);
  await run.publish.written();
  return continueAsNew<typeof sandboxWorkflow>({ request: run.request, carried: carriedState(run) });
}

function carriedState(run: SandboxRun): CarriedState {
  return {
    // The lease loop rolls over only while the lease runs: RUNNING or STOPPED.
    state: run.state as CarriedState['state'],
    createdAt: run.createdAt,
    expiresAt: run.lease.expiresAt,
    seq: run.publish.seq,
    isolation: run.isolation ?? 'unknown',
    limits: run.limits,
    job: run.job,
  };
}
