// A sandbox ends once in its event log, whichever of its workflow and a force destroy (reaper,
// API) writes DESTROYED first; and the reaper leaves alone a lease whose destroy the registry has
// seen start, even while visibility still says RUNNING.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPool } from '../registry/pool';
import { markDestroyed, recordTransitions } from '../registry/sandboxes';
import { planReconciliation, type Inventory } from '../workflows/drift';
import type { SandboxState } from '../workflows/states';
import type { TransitionEvent } from '../workflows/types';

const pool = createPool(inject('databaseUrl'));
afterAll(() => pool.end());

const newId = () => `sbx-once-${randomBytes(6).toString('hex')}`;

function event(
  id: string,
  seq: number,
  from: SandboxState | null,
  to: SandboxState,
  reason = to.toLowerCase(),
): TransitionEvent {
  const at = new Date(Date.UTC(2026, 11, 3, 8, 0, seq)).toISOString();
  return {
    sandboxId: id,
    seq,
    from,
    to,
    reason,
    at,
    sandbox: {
      id,
      owner: 'local',
      state: to,
      driver: 'process',
      labels: {},
      createdAt: at,
      maxExpiresAt: at,
      ...(to === 'DESTROYED' || to === 'DESTROYING' ? { destroyReason: reason } : {}),
    },
  };
}

const running = (id: string) => [
  event(id, 1, null, 'REQUESTED'),
  event(id, 2, 'REQUESTED', 'PROVISIONING'),
  event(id, 3, 'PROVISIONING', 'BOOTING'),
  event(id, 4, 'BOOTING', 'RUNNING'),
];

async function destroyedEvents(id: string) {
  const { rows } = await pool.query(
    'SELECT seq, reason FROM sandbox_events WHERE sandbox_id = $1 AND to_state = $2 ORDER BY seq',
    [id, 'DESTROYED'],
  );
  return rows;
}

describe('one DESTROYED event per sandbox', () => {
  it('a write run again appends nothing and says so (metrics observe only what was appended)', async () => {
    const id = newId();
    const events = running(id);
    expect((await recordTransitions(pool, events)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(await recordTransitions(pool, events)).toEqual([]);
    const next = [events[3]!, event(id, 5, 'RUNNING', 'EXPIRED')];
    expect((await recordTransitions(pool, next)).map((e) => e.seq)).toEqual([5]);
  });

  it('a late write from a terminated run after a force destroy adds no second DESTROYED', async () => {
    const id = newId();
    await recordTransitions(pool, running(id));
    expect(await markDestroyed(pool, id, 'force destroy (reaper: lease overdue)', 'process')).toBe(true);
    // The terminated run's destroy was still in flight in its worker: it finishes and writes.
    await recordTransitions(pool, [event(id, 5, 'RUNNING', 'EXPIRED'), event(id, 6, 'EXPIRED', 'DESTROYING')]);
    await recordTransitions(pool, [event(id, 7, 'DESTROYING', 'DESTROYED', 'lease expired (vm already gone)')]);
    expect(await destroyedEvents(id)).toEqual([{ seq: 1004, reason: 'force destroy (reaper: lease overdue)' }]);
    const { rows } = await pool.query('SELECT state, destroy_reason FROM sandboxes WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ state: 'DESTROYED', destroy_reason: 'force destroy (reaper: lease overdue)' });
  });

  it('a force destroy after the workflow wrote DESTROYED changes nothing', async () => {
    const id = newId();
    await recordTransitions(pool, [
      ...running(id),
      event(id, 5, 'RUNNING', 'DESTROYING'),
      event(id, 6, 'DESTROYING', 'DESTROYED', 'deleted'),
    ]);
    expect(await markDestroyed(pool, id, 'force destroy by local', 'process')).toBe(false);
    expect(await destroyedEvents(id)).toEqual([{ seq: 6, reason: 'deleted' }]);
  });

  it('the migration keeps the first of the duplicates written before it, then refuses new ones', async () => {
    const client = await pool.connect();
    const id = newId();
    try {
      await client.query('BEGIN');
      await client.query('DROP INDEX sandbox_events_one_destroyed_idx');
      await client.query(
        `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
         VALUES ($1, 6, 'DESTROYING', 'DESTROYED', 'first', now()),
                ($1, 1004, 'RUNNING', 'DESTROYED', 'second', now())`,
        [id],
      );
      await client.query(
        readFileSync(new URL('../registry/migrations/004_one_destroyed_event.sql', import.meta.url), 'utf8'),
      );
      const { rows } = await client.query('SELECT seq, reason FROM sandbox_events WHERE sandbox_id = $1', [id]);
      expect(rows).toEqual([{ seq: 6, reason: 'first' }]);
      await expect(
        client.query(
          `INSERT INTO sandbox_events (sandbox_id, seq, from_state, to_state, reason, at)
           VALUES ($1, 9, 'RUNNING', 'DESTROYED', 'x', now())`,
          [id],
        ),
      ).rejects.toThrow(/sandbox_events_one_destroyed_idx/);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('the reaper and a destroy visibility has not seen yet', () => {
  const takenAt = '2026-12-03T08:10:00.000Z';
  const overdueBy60s = '2026-12-03T08:09:00.000Z';
  const inventory = (rowState: string): Inventory => ({
    takenAt,
    drivers: ['process'],
    vms: [{ id: 'sbx-a', driver: 'process' }],
    rows: [{ id: 'sbx-a', driver: 'process', state: rowState, createdAt: '2026-12-03T08:00:00.000Z' }],
    // Visibility: the search attributes of the last completed workflow task.
    openWorkflows: [
      {
        id: 'sbx-a',
        driver: 'process',
        state: 'RUNNING',
        expiresAt: overdueBy60s,
        startedAt: '2026-12-03T08:00:00.000Z',
      },
    ],
    openSessions: [],
  });

  it('waits the destroying grace when the registry says DESTROYING', () => {
    expect(planReconciliation(inventory('DESTROYING'), { graceSeconds: 30 })).toEqual([]);
    expect(planReconciliation(inventory('EXPIRED'), { graceSeconds: 30 })).toEqual([]);
  });

  it('still force-destroys a lease both call RUNNING past its grace', () => {
    expect(planReconciliation(inventory('RUNNING'), { graceSeconds: 30 })).toEqual([
      { id: 'sbx-a', driver: 'process', kind: 'overdue' },
    ]);
  });
});
