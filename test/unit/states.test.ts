// The sandbox state machine (workflows/states.ts): which transitions exist, which operations each
// state accepts, and the message a refused operation carries to the API's 409.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_STATES,
  SANDBOX_STATES,
  TRANSITIONS,
  canTransition,
  invalidStateMessage,
  isAllowed,
  type Operation,
  type SandboxState,
} from '../../workflows/states';

const state = fc.constantFrom(...SANDBOX_STATES);
const operation = fc.constantFrom(...(Object.keys(ALLOWED_STATES) as Operation[]));

/** Every state reachable from `from` by allowed transitions (itself included). */
function reachable(from: SandboxState): Set<SandboxState> {
  const seen = new Set<SandboxState>([from]);
  const todo = [from];
  while (todo.length) {
    for (const next of TRANSITIONS[todo.pop()!]) {
      if (seen.has(next)) continue;
      seen.add(next);
      todo.push(next);
    }
  }
  return seen;
}

describe('transitions', () => {
  it('canTransition answers from the table', () => {
    fc.assert(fc.property(state, state, (from, to) => canTransition(from, to) === TRANSITIONS[from].includes(to)));
  });

  it('the life: REQUESTED → PROVISIONING → BOOTING → RUNNING ⇄ STOPPED, then EXPIRED → DESTROYING → DESTROYED', () => {
    const path: SandboxState[] = ['REQUESTED', 'PROVISIONING', 'BOOTING', 'RUNNING', 'STOPPED', 'RUNNING', 'EXPIRED'];
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!), path[i]).toBe(true);
    expect(canTransition('EXPIRED', 'DESTROYING')).toBe(true);
    expect(canTransition('DESTROYING', 'DESTROYED')).toBe(true);
  });

  it('nothing leaks: DESTROYED is reachable from every state, and nothing leaves it', () => {
    for (const s of SANDBOX_STATES) expect(reachable(s).has('DESTROYED'), s).toBe(true);
    expect(TRANSITIONS.DESTROYED).toEqual([]);
  });

  it('a destroy cannot be undone: from DESTROYING only DESTROYED, and nothing goes back to REQUESTED', () => {
    expect(TRANSITIONS.DESTROYING).toEqual(['DESTROYED']);
    for (const s of SANDBOX_STATES) expect(canTransition(s, 'REQUESTED'), s).toBe(false);
    for (const s of ['EXPIRED', 'FAILED'] as const) expect(TRANSITIONS[s]).toEqual(['DESTROYING']);
  });

  it('a lease runs out only for a sandbox that ran: RUNNING or STOPPED', () => {
    fc.assert(fc.property(state, (s) => canTransition(s, 'EXPIRED') === (s === 'RUNNING' || s === 'STOPPED')));
  });

  it('a sandbox that never ran cannot be stopped or expire, only fail or be destroyed', () => {
    for (const s of ['REQUESTED', 'PROVISIONING', 'BOOTING'] as const) {
      expect(canTransition(s, 'STOPPED'), s).toBe(false);
      expect(canTransition(s, 'EXPIRED'), s).toBe(false);
      expect(canTransition(s, 'FAILED'), s).toBe(true);
      expect(canTransition(s, 'DESTROYING'), s).toBe(true);
    }
  });
});

describe('operations', () => {
  it('renew, exec and stop only when RUNNING; start only when STOPPED', () => {
    fc.assert(
      fc.property(state, (s) => {
        expect(isAllowed('renewLease', s)).toBe(s === 'RUNNING');
        expect(isAllowed('exec', s)).toBe(s === 'RUNNING');
        expect(isAllowed('stop', s)).toBe(s === 'RUNNING');
        expect(isAllowed('start', s)).toBe(s === 'STOPPED');
      }),
    );
  });

  it('destroy is accepted exactly where DESTROYING can follow', () => {
    fc.assert(fc.property(state, (s) => isAllowed('destroy', s) === canTransition(s, 'DESTROYING')));
  });

  it('stop and start are accepted only where their transition exists', () => {
    fc.assert(
      fc.property(state, (s) => {
        if (isAllowed('stop', s)) expect(canTransition(s, 'STOPPED')).toBe(true);
        if (isAllowed('start', s)) expect(canTransition(s, 'RUNNING')).toBe(true);
      }),
    );
  });

  it('a refusal names the operation, the state and the states that would do', () => {
    expect(invalidStateMessage('renewLease', 'EXPIRED')).toBe(
      'cannot renew lease in EXPIRED state; valid states: RUNNING',
    );
    expect(invalidStateMessage('start', 'RUNNING')).toBe('cannot start in RUNNING state; valid states: STOPPED');
    expect(invalidStateMessage('destroy', 'DESTROYED')).toBe(
      'cannot destroy in DESTROYED state; ' +
        'valid states: REQUESTED, PROVISIONING, BOOTING, RUNNING, STOPPED, EXPIRED, FAILED',
    );
    fc.assert(
      fc.property(operation, state, (op, s) => {
        const message = invalidStateMessage(op, s);
        expect(message).toContain(` in ${s} state; valid states: `);
        expect(message.endsWith(ALLOWED_STATES[op].join(', '))).toBe(true);
      }),
    );
  });
});
