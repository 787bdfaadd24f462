// The reaper's planner (workflows/drift.ts): from three views of the world (the hypervisors'
// VMs, the registry's rows, Temporal's open workflows and sessions), the drifts to fix.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  overdueGraceSeconds,
  planReconciliation,
  type Inventory,
  type InventoryRow,
  type InventoryWorkflow,
} from '../../workflows/drift';

const NOW = Date.parse('2030-01-01T12:00:00Z');
const iso = (msFromNow: number) => new Date(NOW + msFromNow).toISOString();
const HOUR_AGO = iso(-3_600_000);

function inventory(over: Partial<Inventory> = {}): Inventory {
  return { takenAt: iso(0), drivers: ['process'], vms: [], rows: [], openWorkflows: [], openSessions: [], ...over };
}
function workflow(id: string, over: Partial<InventoryWorkflow> = {}): InventoryWorkflow {
  return { id, driver: 'process', state: 'RUNNING', expiresAt: iso(60_000), startedAt: HOUR_AGO, ...over };
}
function row(id: string, over: Partial<InventoryRow> = {}): InventoryRow {
  return { id, driver: 'process', state: 'RUNNING', createdAt: HOUR_AGO, ...over };
}
/** A sandbox as it should be: an open RUNNING workflow, its VM, its registry row. */
function healthy(id: string): Pick<Inventory, 'vms' | 'rows' | 'openWorkflows'> {
  return { vms: [{ id, driver: 'process' }], rows: [row(id)], openWorkflows: [workflow(id)] };
}

describe('planReconciliation: each drift', () => {
  it('a healthy sandbox needs nothing', () => {
    expect(planReconciliation(inventory(healthy('sbx-a')), { graceSeconds: 30 })).toEqual([]);
  });

  it('orphan_vm: a VM with no open workflow (whether or not the registry knows it)', () => {
    const inv = inventory({
      vms: [
        { id: 'sbx-a', driver: 'process' },
        { id: 'sbx-b', driver: 'qemu' },
      ],
    });
    inv.rows = [row('sbx-a', { state: 'DESTROYED' })];
    expect(planReconciliation(inv, { graceSeconds: 30 })).toEqual([
      { id: 'sbx-a', driver: 'process', kind: 'orphan_vm' },
      { id: 'sbx-b', driver: 'qemu', kind: 'orphan_vm' },
    ]);
  });

  it('closed_workflow_row: a row not DESTROYED whose workflow is closed; DESTROYED rows are done', () => {
    const inv = inventory({ rows: [row('sbx-a', { state: 'STOPPED' }), row('sbx-b', { state: 'DESTROYED' })] });
    expect(planReconciliation(inv, { graceSeconds: 30 })).toEqual([
      { id: 'sbx-a', driver: 'process', kind: 'closed_workflow_row' },
    ]);
  });

  it('vm_lost: an open RUNNING or STOPPED workflow whose VM is gone', () => {
    for (const state of ['RUNNING', 'STOPPED']) {
      const inv = inventory({ rows: [row('sbx-a')], openWorkflows: [workflow('sbx-a', { state })] });
      expect(planReconciliation(inv, { graceSeconds: 30 }), state).toEqual([
        { id: 'sbx-a', driver: 'process', kind: 'vm_lost' },
      ]);
    }
  });

  it('no vm_lost while the VM is still being made, or when that driver was not asked', () => {
    for (const state of ['REQUESTED', 'PROVISIONING', 'BOOTING']) {
      const inv = inventory({ openWorkflows: [workflow('sbx-a', { state })] });
      expect(planReconciliation(inv, { graceSeconds: 30 }), state).toEqual([]);
    }
    const otherDriver = inventory({ openWorkflows: [workflow('sbx-a', { driver: 'qemu' })] });
    expect(planReconciliation(otherDriver, { graceSeconds: 30 })).toEqual([]);
  });

  it('overdue: an open workflow past expiresAt + grace, not at the boundary', () => {
    const at = (msPastLease: number) =>
      planReconciliation(
        inventory({ ...healthy('sbx-a'), openWorkflows: [workflow('sbx-a', { expiresAt: iso(-msPastLease) })] }),
        {
          graceSeconds: 30,
        },
      );
    expect(at(30_000)).toEqual([]);
    expect(at(30_001)).toEqual([{ id: 'sbx-a', driver: 'process', kind: 'overdue' }]);
  });

  it('session_gone: an open sandbox whose session is closed, naming the session', () => {
    const inv = inventory({ ...healthy('sbx-a'), openWorkflows: [workflow('sbx-a', { sessionId: 'ses-1' })] });
    expect(planReconciliation(inv, { graceSeconds: 30 })).toEqual([
      { id: 'sbx-a', driver: 'process', kind: 'session_gone', sessionId: 'ses-1' },
    ]);
    expect(planReconciliation({ ...inv, openSessions: ['ses-1'] }, { graceSeconds: 30 })).toEqual([]);
  });

  it('one drift per sandbox: overdue before session_gone before vm_lost, and no orphan_vm on top', () => {
    const stuck = workflow('sbx-a', { sessionId: 'ses-1', expiresAt: iso(-60_000) });
    expect(
      planReconciliation(inventory({ rows: [row('sbx-a')], openWorkflows: [stuck] }), { graceSeconds: 30 }),
    ).toEqual([{ id: 'sbx-a', driver: 'process', kind: 'overdue' }]);
    const inSession = workflow('sbx-a', { sessionId: 'ses-1' });
    expect(planReconciliation(inventory({ openWorkflows: [inSession] }), { graceSeconds: 30 })).toEqual([
      { id: 'sbx-a', driver: 'process', kind: 'session_gone', sessionId: 'ses-1' },
    ]);
  });

  it('a workflow that does not know its driver yet is left alone', () => {
    const inv = inventory({ openWorkflows: [workflow('sbx-a', { driver: undefined, expiresAt: iso(-3_600_000) })] });
    expect(planReconciliation(inv, { graceSeconds: 30 })).toEqual([]);
  });
});

describe('planReconciliation: olderThanSeconds', () => {
  it('spares rows and workflows younger than it; VMs count by their row', () => {
    const young = iso(-10_000);
    const inv = inventory({
      vms: [{ id: 'sbx-v', driver: 'process' }],
      rows: [row('sbx-r', { createdAt: young, state: 'RUNNING' }), row('sbx-v', { createdAt: young })],
      openWorkflows: [workflow('sbx-w', { startedAt: young, expiresAt: iso(-3_600_000) })],
    });
    expect(planReconciliation(inv, { graceSeconds: 30, olderThanSeconds: 60 })).toEqual([]);
    expect(planReconciliation(inv, { graceSeconds: 30, olderThanSeconds: 10 }).map((d) => d.id)).toEqual([
      'sbx-w',
      'sbx-r',
      'sbx-v',
    ]);
  });

  it('a VM with no row has no age: it is an orphan whatever olderThanSeconds says', () => {
    const inv = inventory({ vms: [{ id: 'sbx-v', driver: 'process' }] });
    expect(planReconciliation(inv, { graceSeconds: 30, olderThanSeconds: 1e9 })).toEqual([
      { id: 'sbx-v', driver: 'process', kind: 'orphan_vm' },
    ]);
  });
});

describe('planReconciliation: any inventory', () => {
  const ids = fc.constantFrom('sbx-a', 'sbx-b', 'sbx-c', 'sbx-d');
  const driver = fc.constantFrom('process', 'qemu');
  const states = fc.constantFrom('REQUESTED', 'BOOTING', 'RUNNING', 'STOPPED', 'EXPIRED', 'DESTROYING', 'DESTROYED');
  const offset = fc.integer({ min: -7_200_000, max: 7_200_000 });
  const anyInventory = fc.record({
    takenAt: fc.constant(iso(0)),
    drivers: fc.subarray(['process', 'qemu']),
    vms: fc.uniqueArray(fc.record({ id: ids, driver }), { selector: (v) => v.id }),
    rows: fc.uniqueArray(fc.record({ id: ids, driver, state: states, createdAt: offset.map(iso) }), {
      selector: (r) => r.id,
    }),
    openWorkflows: fc.uniqueArray(
      fc.record(
        {
          id: ids,
          driver,
          state: states,
          expiresAt: offset.map(iso),
          sessionId: fc.constantFrom('ses-1', 'ses-2'),
          startedAt: offset.map(iso),
        },
        { requiredKeys: ['id', 'startedAt'] },
      ),
      { selector: (w) => w.id },
    ),
    openSessions: fc.subarray(['ses-1', 'ses-2']),
  });
  const options = fc.record(
    { graceSeconds: fc.integer({ min: 0, max: 600 }), olderThanSeconds: fc.integer({ min: 0, max: 7200 }) },
    { requiredKeys: ['graceSeconds'] },
  );

  it('at most one drift per sandbox, each one justified by the inventory', () => {
    fc.assert(
      fc.property(anyInventory, options, (inv, opts) => {
        const drifts = planReconciliation(inv, opts);
        expect(new Set(drifts.map((d) => d.id)).size).toBe(drifts.length);
        const open = new Map(inv.openWorkflows.map((w) => [w.id, w]));
        for (const d of drifts) {
          const w = open.get(d.id);
          if (d.kind === 'orphan_vm') expect(inv.vms.some((v) => v.id === d.id) && !w).toBe(true);
          if (d.kind === 'closed_workflow_row') {
            expect(inv.rows.some((r) => r.id === d.id && r.state !== 'DESTROYED') && !w).toBe(true);
          }
          if (d.kind === 'overdue') expect(NOW > Date.parse(w!.expiresAt!) + opts.graceSeconds * 1000).toBe(true);
          if (d.kind === 'session_gone') expect(d.sessionId && !inv.openSessions.includes(d.sessionId)).toBeTruthy();
          if (d.kind === 'vm_lost') {
            expect(inv.drivers).toContain(d.driver);
            expect(inv.vms.some((v) => v.id === d.id)).toBe(false);
          }
        }
      }),
    );
  });

  it('every VM without an open workflow, and old enough, is planned for destruction', () => {
    fc.assert(
      fc.property(anyInventory, options, (inv, opts) => {
        const planned = new Set(planReconciliation(inv, opts).map((d) => d.id));
        const open = new Set(inv.openWorkflows.map((w) => w.id));
        for (const vm of inv.vms) {
          const r = inv.rows.find((x) => x.id === vm.id);
          const old =
            opts.olderThanSeconds === undefined || !r || NOW - Date.parse(r.createdAt) >= opts.olderThanSeconds * 1000;
          if (!open.has(vm.id) && old) expect(planned.has(vm.id), vm.id).toBe(true);
        }
      }),
    );
  });
});

describe('overdueGraceSeconds', () => {
  it('is the grace for a sandbox nobody is destroying yet', () => {
    expect(overdueGraceSeconds(['RUNNING', 'RUNNING'], 30)).toBe(30);
    expect(overdueGraceSeconds([undefined, undefined], 30)).toBe(30);
  });

  it('is ten times the grace, at least 300 s, once either view says EXPIRED or DESTROYING', () => {
    expect(overdueGraceSeconds(['RUNNING', 'DESTROYING'], 30)).toBe(300);
    expect(overdueGraceSeconds(['EXPIRED', undefined], 30)).toBe(300);
    expect(overdueGraceSeconds([undefined, 'EXPIRED'], 60)).toBe(600);
    expect(overdueGraceSeconds(['DESTROYING', 'DESTROYING'], 5)).toBe(300);
    expect(overdueGraceSeconds(['EXPIRED', 'RUNNING'], 0)).toBe(300);
  });

  it('never less than the plain grace', () => {
    const view = fc.constantFrom(undefined, 'RUNNING', 'STOPPED', 'EXPIRED', 'DESTROYING');
    fc.assert(
      fc.property(fc.array(view, { maxLength: 3 }), fc.integer({ min: 0, max: 10_000 }), (states, grace) => {
        expect(overdueGraceSeconds(states, grace)).toBeGreaterThanOrEqual(grace);
      }),
    );
  });

  it('the planner uses it: a lease the registry calls DESTROYING gets the longer grace', () => {
    const inv = (registry: string) =>
      inventory({
        ...healthy('sbx-a'),
        rows: [row('sbx-a', { state: registry })],
        openWorkflows: [workflow('sbx-a', { expiresAt: iso(-120_000) })],
      });
    expect(planReconciliation(inv('DESTROYING'), { graceSeconds: 30 })).toEqual([]);
    expect(planReconciliation(inv('RUNNING'), { graceSeconds: 30 })).toEqual([
      { id: 'sbx-a', driver: 'process', kind: 'overdue' },
    ]);
  });
});
