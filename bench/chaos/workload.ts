// The chaos run's clients: each planned sandbox or session, at its planned moment, through the API
// (create with an Idempotency-Key, renew by update or by signal, destroy, session heartbeats).
import { sandboxIdForKey } from '../../api/sandboxes/idempotency';
import type { Dice } from '../lib/prng';
import { sleep, type ChaosClient } from './client';
import type { ChaosPlan, PlannedSandbox, PlannedSession } from './plan';
import type { ChaosReport } from './report';

export class Workload {
  readonly createOutcome: ChaosReport['sandboxes']['createCalls'] = { ok: 0, refused: {}, failed: 0 };
  /** every id an Idempotency-Key maps to, whether the create went through or not */
  readonly knownIds = new Set<string>();

  constructor(
    private readonly http: ChaosClient,
    private readonly dice: Dice,
    private readonly runId: string,
    /** plan times are ms after this */
    private readonly startedMs: number,
    /** unexpected outcomes go here */
    private readonly failures: string[],
  ) {}

  /** Every planned sandbox and session, concurrently; resolves when the last client is done. */
  async run(plan: ChaosPlan): Promise<void> {
    await Promise.all([
      ...plan.sandboxes.filter((p) => p.session === undefined).map((p) => this.sandbox(p)),
      ...plan.sessions.map((s) => this.session(s)),
    ]);
  }

  private async sandbox(p: PlannedSandbox, sessionId?: string): Promise<void> {
    const { http, dice } = this;
    await sleep(Math.max(0, this.startedMs + p.atMs - Date.now()));
    const key = `chaos-${this.runId}-${p.n}`;
    const labels = { chaos: this.runId, kind: p.kind };
    const id = await this.create(key, { ttlSeconds: p.ttl, wait: p.wait, labels, ...(sessionId ? { sessionId } : {}) });
    if (!id) return;
    if (p.kind === 'renew-update' || p.kind === 'renew-signal') {
      if (!p.wait && !(await this.waitRunning(id))) return;
      for (let i = 0; i < p.renewals; i++) {
        await sleep(dice.uniform([1, Math.max(1.5, p.ttl - 1.5)]) * 1000);
        const body = { ttlSeconds: dice.int([3, 8]), async: p.kind === 'renew-signal' };
        const headers = { 'Idempotency-Key': `${key}-renew-${i}` };
        await http.call('POST', `/v1/sandboxes/${id}/lease/renew`, body, { headers }).catch(() => {});
      }
    } else if (p.kind === 'destroy') {
      await sleep(dice.uniform([0.5, 4]) * 1000);
      await http.call('DELETE', `/v1/sandboxes/${id}`, { reason: 'chaos: destroy by request' }).catch(() => {});
    }
  }

  private async session(s: PlannedSession): Promise<void> {
    const { http, dice } = this;
    await sleep(Math.max(0, this.startedMs + s.atMs - Date.now()));
    const body = { heartbeatTimeoutSeconds: s.heartbeatTimeout };
    const r = await http.call<{ id: string }>('POST', '/v1/sessions', body).catch(() => null);
    if (r?.status !== 201) {
      this.failures.push(`session create failed: ${r?.status ?? 'no answer'}`);
      return;
    }
    const sessionId = r.body.id;
    const members = s.members.map((m) => this.sandbox({ ...m, atMs: 0 }, sessionId));
    if (s.end === 'delete') {
      await sleep(dice.uniform([1.5, 4]) * 1000);
      await http.call('DELETE', `/v1/sessions/${sessionId}`).catch(() => {});
    } else {
      for (let i = 0; i < s.heartbeats; i++) {
        await sleep(2000);
        await http.call('POST', `/v1/sessions/${sessionId}/heartbeat`).catch(() => {});
      }
    }
    await Promise.all(members);
  }

  /** The sandbox id, or null when the API refused or never answered (counted in createOutcome). */
  private async create(key: string, body: Record<string, unknown>): Promise<string | null> {
    // Owner "local": the chaos API runs without tokens.
    const id = sandboxIdForKey('local', key);
    this.knownIds.add(id);
    const outcome = this.createOutcome;
    try {
      const r = await this.http.call<{ id: string; state: string }>('POST', '/v1/sandboxes', body, {
        headers: { 'Idempotency-Key': key },
        timeoutMs: body.wait ? 90_000 : 20_000,
      });
      if (r.status === 200 || r.status === 201) {
        outcome.ok += 1;
        if (r.body.id !== id) this.failures.push(`idempotency id mismatch: ${r.body.id} != ${id}`);
        return id;
      }
      const code = `${r.status} ${errorCode(r.body)}`.trim();
      outcome.refused[code] = (outcome.refused[code] ?? 0) + 1;
      return null;
    } catch {
      outcome.failed += 1;
      return null;
    }
  }

  private async waitRunning(id: string, timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await this.http.call<{ state: string }>('GET', `/v1/sandboxes/${id}`).catch(() => null);
      if (r?.status === 200) {
        if (r.body.state === 'RUNNING') return true;
        if (['EXPIRED', 'DESTROYING', 'DESTROYED', 'FAILED'].includes(r.body.state)) return false;
      }
      await sleep(300);
    }
    return false;
  }
}

/** The API's error code from an error body ({ error: { code } }), or '' when there is none. */
function errorCode(body: unknown): string {
  const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : '';
}
