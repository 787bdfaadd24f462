// Reconciliation, as a pure function: three views of the world in, the drifts to fix out.
// The activity that fixes each drift re-checks it against Temporal first (visibility lags).

export type DriftKind =
  | 'orphan_vm' // a VM of ours with no open workflow
  | 'closed_workflow_row' // a registry row not DESTROYED whose workflow is closed
  | 'vm_lost' // an open workflow in RUNNING/STOPPED whose VM is gone
  | 'overdue' // an open workflow past expiresAt + grace
  | 'session_gone'; // an open sandbox whose session workflow is closed

export interface InventoryVm {
  id: string;
  driver: string;
}

export interface InventoryRow {
  id: string;
  driver: string;
  state: string;
  createdAt: string;
}

export interface InventoryWorkflow {
  id: string;
  driver?: string;
  state?: string;
  expiresAt?: string;
  sessionId?: string;
  startedAt: string;
}

export interface Inventory {
  takenAt: string;
  /** Drivers whose inventory was taken; VMs of other drivers are unknown, not missing. */
  drivers: string[];
  vms: InventoryVm[];
  rows: InventoryRow[];
  openWorkflows: InventoryWorkflow[];
  openSessions: string[];
}

export interface Drift {
  id: string;
  driver: string;
  kind: DriftKind;
  sessionId?: string;
}

export interface PlanOptions {
  graceSeconds: number;
  /** Only act on sandboxes older than this (rows/workflows); VMs have no reliable age. */
  olderThanSeconds?: number;
}

const VM_EXPECTED: readonly string[] = ['RUNNING', 'STOPPED'];
const DESTROYING_STATES: readonly string[] = ['EXPIRED', 'DESTROYING'];

/**
 * How far past expiresAt an open workflow counts as stuck. One already destroying is retrying on
 * its own: only a long stall counts. `states` are what visibility and the registry say: the
 * registry can know of a destroy first (it runs inside the workflow task that decided it, and the
 * task's search attributes reach the server only when it completes).
 */
export function overdueGraceSeconds(states: (string | undefined)[], graceSeconds: number): number {
  const destroying = states.some((s) => s !== undefined && DESTROYING_STATES.includes(s));
  return destroying ? Math.max(graceSeconds * 10, 300) : graceSeconds;
}

export function planReconciliation(inv: Inventory, opts: PlanOptions): Drift[] {
  const now = Date.parse(inv.takenAt);
  const old = (iso: string) =>
    opts.olderThanSeconds === undefined || now - Date.parse(iso) >= opts.olderThanSeconds * 1000;
  const open = new Map(inv.openWorkflows.map((w) => [w.id, w]));
  const vms = new Map(inv.vms.map((v) => [v.id, v]));
  const rows = new Map(inv.rows.map((r) => [r.id, r]));
  const sessions = new Set(inv.openSessions);
  const drifts: Drift[] = [];
  const seen = new Set<string>();
  const add = (d: Drift) => {
    if (seen.has(d.id)) return; // one fix per sandbox per run
    seen.add(d.id);
    drifts.push(d);
  };

  for (const w of inv.openWorkflows) {
    if (!old(w.startedAt) || !w.driver) continue;
    const grace = overdueGraceSeconds([w.state, rows.get(w.id)?.state], opts.graceSeconds);
    if (w.expiresAt && now > Date.parse(w.expiresAt) + grace * 1000) {
      add({ id: w.id, driver: w.driver, kind: 'overdue' });
    } else if (w.sessionId && !sessions.has(w.sessionId)) {
      add({ id: w.id, driver: w.driver, kind: 'session_gone', sessionId: w.sessionId });
    } else if (w.state && VM_EXPECTED.includes(w.state) && inv.drivers.includes(w.driver) && !vms.has(w.id)) {
      add({ id: w.id, driver: w.driver, kind: 'vm_lost' });
    }
  }
  for (const row of inv.rows) {
    if (row.state !== 'DESTROYED' && !open.has(row.id) && old(row.createdAt)) {
      add({ id: row.id, driver: row.driver, kind: 'closed_workflow_row' });
    }
  }
  for (const vm of inv.vms) {
    const row = rows.get(vm.id);
    if (!open.has(vm.id) && (!row || old(row.createdAt))) add({ id: vm.id, driver: vm.driver, kind: 'orphan_vm' });
  }
  return drifts;
}
