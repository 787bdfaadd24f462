// Past what the workers can create at once, creates are refused quickly (429, Retry-After) while
// the leases of running sandboxes are still renewed and destroyed.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessHypervisor } from '../hypervisors/process/driver';
import type { SandboxSpec, VmInfo } from '../hypervisors/types';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';

/** A real process driver whose creates wait until the test lets them through. */
class GatedCreates extends ProcessHypervisor {
  private open!: () => void;
  private gate = new Promise<void>((r) => (this.open = r));
  release() {
    this.open();
  }
  override async create(spec: SandboxSpec): Promise<VmInfo> {
    await this.gate;
    return super.create(spec);
  }
}
const gated = new GatedCreates({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'hourglass-gated-')) });

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ drivers: { gated }, maxPendingCreates: 2 });
});
afterAll(() => h?.close());

describe('backpressure', () => {
  it('refuses creates beyond the pending limit with 429 and Retry-After; renewals and destroys go on', async () => {
    const { body: running } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 60 });
    const { body: other } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 60 });
    expect(running.state).toBe('RUNNING');

    // Two creates wait on the gate: the limit is reached.
    // (Labelled: other test files share the registry and the owner.)
    const mark = `gated-${Date.now()}`;
    const waiting = [1, 2].map(() =>
      h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 60, driver: 'gated', labels: { bp: mark } }),
    );
    await eventually(
      async () => (await h.api('GET', `/v1/sandboxes?state=PROVISIONING&label=bp=${mark}`)).body.items.length === 2,
    );

    const started = performance.now();
    const refused = await fetch(`${h.baseUrl}/v1/sandboxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ttlSeconds: 60 }),
    });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = (await refused.json()) as {
      error: { code: string; message: string; details: { pending: number; max: number } };
    };
    expect(body.error.code).toBe('overloaded');
    expect(body.error.message).toMatch(
      /2 sandboxes are being created right now \(at most 2 at once, HOURGLASS_MAX_PENDING_CREATES\)/,
    );
    expect(body.error.details).toEqual({ pending: 2, max: 2 });

    // Never refused for load: a renewal and a destroy.
    const renewed = await h.api('POST', `/v1/sandboxes/${running.id}/lease/renew`, { ttlSeconds: 120 });
    expect(renewed.status).toBe(200);
    expect((await h.api('DELETE', `/v1/sandboxes/${other.id}`)).status).toBeLessThan(300);
    await eventually(
      async () => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${other.id}`)).body.state === 'DESTROYED',
    );

    gated.release();
    for (const res of await Promise.all(waiting)) expect(res.body.state).toBe('RUNNING');
    const after = await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 60 });
    expect(after.status).toBe(201);
  });
});
