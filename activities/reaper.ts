// The reaper's activities: take inventory of the three sources, and fix one drift after
// re-checking it against Temporal (visibility is eventually consistent; describe is not).
import { heartbeat, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type pg from 'pg';
import type { HypervisorSet } from '../hypervisors/index';
import { openRows, storeReaperRun, type StoredReport } from '../registry/reaper-runs';
import { deleteOutputOfDestroyed } from '../registry/exec-output';
import { deleteStaleTransfers } from '../registry/transfers';
import { closeExecsOfDestroyed } from '../registry/execs';
import { getSandbox, markDestroyed } from '../registry/sandboxes';
import {
  overdueGraceSeconds,
  planReconciliation,
  type Drift,
  type Inventory,
  type InventoryVm,
  type PlanOptions,
} from '../workflows/drift';
import { destroySignal, vmLostSignal } from '../workflows/messages';
import { SandboxDriver, SandboxExpiresAt, SandboxSession, SandboxState } from '../workflows/search-attributes';
import { sandboxWorkflowId, sessionWorkflowId } from '../workflows/ids';

/** Drifts one reaper run fixes at most (and carries through its history): ~100 bytes each. */
export const MAX_DRIFTS_PER_RUN = 2000;

export interface FixDriftInput {
  drift: Drift;
  dryRun: boolean;
  graceSeconds: number;
}

export interface ReaperDeps {
  pool: pg.Pool;
  hypervisors: HypervisorSet;
  client: Client;
  taskQueue: string;
}

export function createReaperActivities({ pool, hypervisors, client, taskQueue }: ReaperDeps) {
  const sandboxHandle = (id: string) => client.workflow.getHandle(sandboxWorkflowId(id));

  /** Open (RUNNING status) description of the sandbox's workflow, or null when closed/unknown. */
  async function openWorkflow(id: string) {
    try {
      const d = await sandboxHandle(id).describe();
      return d.status.name === 'RUNNING' ? d : null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The three sources, read now; heartbeats as it goes (thousands of VMs and workflows take a while). */
  async function takeInventory(): Promise<Inventory> {
    const takenAt = new Date().toISOString();
    const drivers: string[] = [];
    const vms: InventoryVm[] = [];
    for (const driver of hypervisors.all()) {
      heartbeat(`inventory of ${driver.name}`);
      try {
        for (const vm of await driver.list()) vms.push({ id: vm.id, driver: driver.name });
        drivers.push(driver.name);
      } catch (err) {
        // Unknown is not missing: without this driver's inventory, none of its VMs count as lost.
        log.error(`inventory of driver ${driver.name} failed: ${(err as Error).message}`, { driver: driver.name });
      }
    }
    const openWorkflows: Inventory['openWorkflows'] = [];
    for await (const w of client.workflow.list({
      query: `WorkflowType = 'sandboxWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue}'`,
    })) {
      if (openWorkflows.length % 500 === 0) heartbeat(`${openWorkflows.length} open workflows listed`);
      const expiresAt = w.typedSearchAttributes.get(SandboxExpiresAt);
      openWorkflows.push({
        id: w.workflowId.replace(/^sandbox:/, ''),
        driver: w.typedSearchAttributes.get(SandboxDriver),
        state: w.typedSearchAttributes.get(SandboxState),
        expiresAt: expiresAt ? new Date(expiresAt).toISOString() : undefined,
        sessionId: w.typedSearchAttributes.get(SandboxSession),
        startedAt: w.startTime.toISOString(),
      });
    }
    const openSessions: string[] = [];
    for await (const w of client.workflow.list({
      query: `WorkflowType = 'sessionWorkflow' AND ExecutionStatus = 'Running'`,
    })) {
      openSessions.push(w.workflowId.replace(/^session:/, ''));
    }
    return { takenAt, drivers, vms, rows: await openRows(pool), openWorkflows, openSessions };
  }

  return {
    /** Runs started before planDrifts existed still call it. */
    takeInventory,

    /**
     * Takes inventory and plans the fixes here, not in the workflow: the inventory grows by ~240
     * bytes per sandbox and passed 1.8 MB (Temporal refuses payloads over 2 MB) at ~6,000 live.
     * Only the drifts travel through history, at most MAX_DRIFTS_PER_RUN; the rest wait for the next run.
     */
    async planDrifts(opts: PlanOptions): Promise<{ drifts: Drift[]; deferred: number }> {
      const drifts = planReconciliation(await takeInventory(), opts);
      return { drifts: drifts.slice(0, MAX_DRIFTS_PER_RUN), deferred: Math.max(0, drifts.length - MAX_DRIFTS_PER_RUN) };
    },

    /** Returns the action taken (or that would be taken), or null when the drift is gone on a second look. */
    async fixDrift({ drift, dryRun, graceSeconds }: FixDriftInput): Promise<string | null> {
      heartbeat(drift.id);
      if (!hypervisors.has(drift.driver)) return null; // another worker's driver: its reaper handles it
      const driver = hypervisors.get(drift.driver);
      const would = (action: string) => (dryRun ? `would ${action}` : null);

      switch (drift.kind) {
        case 'orphan_vm':
        case 'closed_workflow_row': {
          if (await openWorkflow(drift.id)) return null;
          const reason = drift.kind === 'orphan_vm' ? 'reaper: vm without a workflow' : 'reaper: workflow closed';
          if (dryRun) {
            return would(drift.kind === 'orphan_vm' ? 'destroy vm' : 'destroy vm if present, mark DESTROYED')!;
          }
          const { existed } = await driver.destroy(drift.id);
          const marked = await markDestroyed(pool, drift.id, reason, drift.driver);
          if (!existed && !marked) return null; // its own workflow finished the job meanwhile
          return existed ? 'destroyed vm, marked DESTROYED' : 'marked DESTROYED';
        }
        case 'vm_lost': {
          const d = await openWorkflow(drift.id);
          const state = d?.typedSearchAttributes.get(SandboxState);
          if (!d || (state !== 'RUNNING' && state !== 'STOPPED') || (await driver.describe(drift.id))) return null;
          if (dryRun) return would('signal vm lost')!;
          await sandboxHandle(drift.id).signal(vmLostSignal, {
            detail: `the ${drift.driver} hypervisor no longer has this VM`,
          });
          return 'signalled vm lost';
        }
        case 'overdue': {
          const d = await openWorkflow(drift.id);
          if (d) {
            // The same rule as the plan, on fresh state: visibility may still have shown RUNNING.
            const expiresAt = d.typedSearchAttributes.get(SandboxExpiresAt);
            const row = await getSandbox(pool, drift.id);
            const grace = overdueGraceSeconds([d.typedSearchAttributes.get(SandboxState), row?.state], graceSeconds);
            if (!expiresAt || Date.now() <= new Date(expiresAt).getTime() + grace * 1000) return null;
            if (dryRun) return would('force destroy')!;
            await sandboxHandle(drift.id).terminate('reaper: lease overdue, force destroy');
          }
          // Closed: terminated by us on an earlier attempt whose destroy failed; finish the job now.
          if (dryRun) return null;
          const { existed } = await driver.destroy(drift.id);
          await markDestroyed(pool, drift.id, 'force destroy (reaper: lease overdue)', drift.driver);
          return existed ? 'terminated workflow, destroyed vm' : 'terminated workflow (vm already gone)';
        }
        case 'session_gone': {
          if (!(await openWorkflow(drift.id)) || (await sessionOpen(client, drift.sessionId!))) return null;
          if (dryRun) return would('end sandbox (session ended)')!;
          await sandboxHandle(drift.id).signal(destroySignal, { reason: 'session ended' });
          return 'signalled destroy (session ended)';
        }
      }
    },

    async storeReaperRun(report: StoredReport): Promise<number> {
      return storeReaperRun(pool, report);
    },

    /**
     * exec_output of sandboxes destroyed over an hour ago; transfers (≤100 MiB each) left over a
     * day; commands left open in sandboxes destroyed over 2 min ago (the workflow has 30 s to
     * record them itself: past that, it was terminated or gave up).
     */
    async pruneDataPlane(): Promise<{ outputRows: number; transfers: number; execsClosed: number }> {
      const outputRows = await deleteOutputOfDestroyed(pool, 3600);
      const transfers = await deleteStaleTransfers(pool, 24 * 3600);
      const execsClosed = await closeExecsOfDestroyed(pool, 120);
      return { outputRows, transfers, execsClosed };
    },
  };
}

async function sessionOpen(client: Client, sessionId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(sessionWorkflowId(sessionId)).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
