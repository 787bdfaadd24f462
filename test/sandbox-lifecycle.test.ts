// The sandbox workflow end to end through the REST API, on a real Temporal server, real
// PostgreSQL and the real process driver (bubblewrap).
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, recordProcess } from '../hypervisors/common/proc-identity';
import { sandboxIdForKey } from '../api/sandboxes/idempotency';
import { recordTransition } from '../registry/sandboxes';
import type { SandboxStatus } from '../workflows/types';
import { eventually, settledEvents, startHarness, type Harness } from './support/harness';
import { sandboxWorkflowId } from '../workflows/ids';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.close());

const create = async (body: Record<string, unknown>, headers?: Record<string, string>) => {
  return h.api('POST', '/v1/sandboxes', body, headers);
};
const state = async (id: string) => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body;
const untilDestroyed = (id: string, timeoutMs = 15_000) =>
  eventually(async () => {
    const s = await state(id);
    return s.state === 'DESTROYED' ? s : undefined;
  }, timeoutMs);

describe('sandbox lifecycle', () => {
  it('creates a sandbox that reaches RUNNING, recorded in the registry with every transition', async () => {
    const res = await create({ ttlSeconds: 60, labels: { suite: 'lifecycle' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ state: 'RUNNING', driver: 'process', labels: { suite: 'lifecycle' } });
    expect(res.body.isolation).toMatch(/^bubblewrap/);
    expect(Date.parse(res.body.expiresAt!) - Date.now()).toBeGreaterThan(55_000);

    const listed = await eventually(async () => {
      const { body } = await h.api<{ items: SandboxStatus[] }>('GET', '/v1/sandboxes?label=suite=lifecycle');
      return body.items.find((s) => s.id === res.body.id && s.state === 'RUNNING');
    });
    expect(listed.isolation).toBe(res.body.isolation);
    expect((await settledEvents(h, res.body.id, 'RUNNING')).map((e) => e.to)).toEqual([
      'REQUESTED',
      'PROVISIONING',
      'BOOTING',
      'RUNNING',
    ]);
    await h.api('DELETE', `/v1/sandboxes/${res.body.id}`);
  });

  it('runs commands and returns stdout, stderr and the exit code; execs are recorded', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    const ok = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, {
      command: ['sh', '-c', 'echo hi; echo oops >&2; hostname; exit 3'],
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ exitCode: 3, stdout: 'hi\nsandbox\n', stderr: 'oops\n', timedOut: false });

    // Files persist in the sandbox's own /work between commands; the network is off.
    await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sh', '-c', 'echo state > file.txt'] });
    const cat = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['cat', '/work/file.txt'] });
    expect(cat.body.stdout).toBe('state\n');
    const net = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['cat', '/proc/net/dev'] });
    expect(net.body.stdout).not.toMatch(/eth0|ens/);

    const slow = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sleep', '30'], timeoutSeconds: 1 });
    expect(slow.body).toMatchObject({ exitCode: 124, timedOut: true });

    const execs = await h.api<{ items: { command: string[]; exitCode: number; stdout: string }[] }>(
      'GET',
      `/v1/sandboxes/${sbx.id}/execs`,
    );
    expect(execs.body.items[0]).toMatchObject({
      command: ['sh', '-c', 'echo hi; echo oops >&2; hostname; exit 3'],
      exitCode: 3,
      stdout: 'hi\nsandbox\n',
    });
    expect(execs.body.items).toHaveLength(5);
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
  });

  it('caps large output: 256 KiB back to the caller, 64 KiB in the registry', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    const big = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, {
      command: ['sh', '-c', 'head -c 900000 /dev/zero | tr "\\0" a'],
    });
    expect(big.status).toBe(200);
    expect(big.body.stdout.length).toBeLessThan(300 * 1024);
    expect(big.body.stdout).toMatch(/…\[truncated at 262144 bytes\]$/);
    const execs = await h.api('GET', `/v1/sandboxes/${sbx.id}/execs`);
    expect(execs.body.items[0].stdout.length).toBeLessThan(70 * 1024);
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
  });

  it('destroys the sandbox when its lease expires, on time, and removes its directory and processes', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 2 });
    const info = await h.hypervisors.get('process').describe(sbx.id);
    // The holder's pid with its start time from /proc: a later process reusing the pid is not it.
    const holder = await recordProcess(info!.details.holderPid as number);
    expect(await isAlive(holder)).toBe(true); // so the check at the end can fail
    await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sh', '-c', 'sleep 300 > /dev/null 2>&1 &'] });

    const done = await untilDestroyed(sbx.id);
    const destroyedAt = Date.now();
    expect(destroyedAt - Date.parse(sbx.expiresAt!)).toBeLessThan(2500);
    expect(done.destroyReason).toBe('lease expired');
    expect((await settledEvents(h, sbx.id, 'DESTROYED')).map((e) => [e.to, e.reason]).slice(-3)).toEqual([
      ['EXPIRED', 'lease expired'],
      ['DESTROYING', 'lease expired'],
      ['DESTROYED', 'lease expired'],
    ]);
    expect(existsSync(info!.details.dir as string)).toBe(false);
    expect(await h.hypervisors.get('process').describe(sbx.id)).toBeNull();
    expect(await isAlive(holder)).toBe(false);
  });

  it('renews the lease by update (returns expiresAt, capped by maxLifetimeSeconds) and by signal', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 3, maxLifetimeSeconds: 40 });
    const renewed = await h.api('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 20 });
    expect(renewed.status).toBe(200);
    expect(Date.parse(renewed.body.expiresAt) - Date.now()).toBeGreaterThan(18_000);
    expect(renewed.body.capped).toBe(false);

    const capped = await h.api('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 3600 });
    expect(capped.body).toMatchObject({ capped: true, expiresAt: sbx.maxExpiresAt });

    const { body: other }: { body: SandboxStatus } = await create({ ttlSeconds: 3 });
    const signalled = await h.api('POST', `/v1/sandboxes/${other.id}/lease/renew`, { ttlSeconds: 30, async: true });
    expect(signalled.status).toBe(202);
    const after = await eventually(async () => {
      const s = await state(other.id);
      return Date.parse(s.expiresAt!) - Date.parse(other.expiresAt!) > 20_000 ? s : undefined;
    });
    // Still alive well past its original 3 s lease.
    await new Promise((r) => setTimeout(r, 4000));
    expect((await state(other.id)).state).toBe('RUNNING');
    expect(after.state).toBe('RUNNING');
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
    await h.api('DELETE', `/v1/sandboxes/${other.id}`);
  });

  it('rejects a renewal outside RUNNING with the state and the valid states', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    const bad = await h.api('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/ttlSeconds/);

    await h.api('POST', `/v1/sandboxes/${sbx.id}/stop`);
    const stopped = await h.api('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 10 });
    expect(stopped.status).toBe(409);
    expect(stopped.body.error).toMatchObject({
      code: 'invalid_state',
      message: 'cannot renew lease in STOPPED state; valid states: RUNNING',
      details: { state: 'STOPPED' },
    });

    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
    await untilDestroyed(sbx.id);
    const late = await h.api('POST', `/v1/sandboxes/${sbx.id}/lease/renew`, { ttlSeconds: 10 });
    expect(late.status).toBe(409);
    expect(late.body.error.message).toBe('cannot renew lease in DESTROYED state; valid states: RUNNING');
  });

  it('stops and starts a sandbox, keeping its files', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sh', '-c', 'echo kept > f'] });
    const stopped = await h.api('POST', `/v1/sandboxes/${sbx.id}/stop`);
    expect(stopped.body.state).toBe('STOPPED');
    const refused = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['true'] });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toBe('cannot exec in STOPPED state; valid states: RUNNING');
    const started = await h.api('POST', `/v1/sandboxes/${sbx.id}/start`);
    expect(started.body.state).toBe('RUNNING');
    const cat = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['cat', 'f'] });
    expect(cat.body.stdout).toBe('kept\n');
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
  });

  it('destroys on request, with the requester in the reason, and refuses a second destroy without force', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    const res = await h.api('POST', `/v1/sandboxes/${sbx.id}/destroy`, {}, { 'x-hourglass-actor': 'agent-7' });
    expect(res.status).toBe(202);
    const done = await untilDestroyed(sbx.id);
    expect(done.destroyReason).toBe('destroy requested by local (for agent-7)');
    const again = await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(
      /cannot destroy in DESTROYED state; valid states: .*FAILED \(or pass force: true\)/,
    );
    expect(again.body.error.details).toMatchObject({ state: 'DESTROYED', force: true });
  });

  it('workflow cancellation (e.g. from the Temporal UI) also destroys', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).cancel();
    const done = await untilDestroyed(sbx.id);
    expect(done.destroyReason).toBe('workflow cancelled');
    expect(await h.hypervisors.get('process').describe(sbx.id)).toBeNull();
  });

  it('force-destroys a sandbox whose workflow was terminated (its finally never ran)', async () => {
    const { body: sbx }: { body: SandboxStatus } = await create({ ttlSeconds: 60 });
    await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).terminate('simulated operator mistake');
    expect(await h.hypervisors.get('process').describe(sbx.id)).not.toBeNull(); // leaked, for now
    const res = await h.api('POST', `/v1/sandboxes/${sbx.id}/destroy`, { force: true });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ state: 'DESTROYED', destroyReason: 'force destroy by local', vmExisted: true });
    expect(await h.hypervisors.get('process').describe(sbx.id)).toBeNull();
    expect((await state(sbx.id)).state).toBe('DESTROYED');
  });
});

describe('idempotent create', () => {
  it('returns the same sandbox for the same Idempotency-Key and body, 422 for another body', async () => {
    const key = { 'idempotency-key': `k-${Date.now()}` };
    const first = await create({ ttlSeconds: 60, labels: { a: '1' } }, key);
    const second = await create({ ttlSeconds: 60, labels: { a: '1' } }, key);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect((await h.hypervisors.get('process').list()).filter((v) => v.id === first.body.id)).toHaveLength(1);
    const conflict = await create({ ttlSeconds: 61, labels: { a: '1' } }, key);
    expect(conflict.status).toBe(422);
    expect(conflict.body.error.code).toBe('idempotency_conflict');
    await h.api('DELETE', `/v1/sandboxes/${first.body.id}`);
  });

  it('a key whose workflow passed retention still names its sandbox (from the registry), never a second', async () => {
    const key = `k-old-${Date.now()}`;
    const id = sandboxIdForKey('local', key);
    const at = new Date().toISOString();
    // What the registry keeps of a sandbox whose closed workflow Temporal has since deleted.
    await recordTransition(h.pool, {
      sandboxId: id,
      seq: 7,
      from: 'DESTROYING',
      to: 'DESTROYED',
      reason: 'lease expired',
      at,
      sandbox: {
        id,
        owner: 'local',
        state: 'DESTROYED',
        driver: 'process',
        labels: {},
        createdAt: at,
        maxExpiresAt: at,
        destroyReason: 'lease expired',
      },
    });

    const again = await create({ ttlSeconds: 60 }, { 'idempotency-key': key });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id, state: 'DESTROYED', destroyReason: 'lease expired' });
    await expect(h.client.workflow.getHandle(sandboxWorkflowId(id)).describe()).rejects.toThrow(/not found/i);
    expect(await h.hypervisors.get('process').describe(id)).toBeNull();
  });

  it('the driver finds the sandbox it already made when create is retried', async () => {
    const driver = h.hypervisors.get('process');
    const a = await driver.create({ id: 'retry-probe', labels: {} });
    const b = await driver.create({ id: 'retry-probe', labels: {} });
    expect(b.details.holderPid).toBe(a.details.holderPid);
    await driver.destroy('retry-probe');
  });
});

describe('API input', () => {
  it('answers bad input with 400 naming the field, unknown ids with 404, never 500', async () => {
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/v1/sandboxes', {}, 400, /ttlSeconds/],
      ['POST', '/v1/sandboxes', { ttlSeconds: -1 }, 400, /ttlSeconds: must be greater than 0/],
      ['POST', '/v1/sandboxes', { ttlSeconds: 5, labels: { 'bad key!': 'x' } }, 400, /labels/],
      [
        'POST',
        '/v1/sandboxes',
        { ttlSeconds: 5, driver: 'vmware' },
        400,
        /driver: 'vmware' is not enabled; enabled drivers: process/,
      ],
      ['POST', '/v1/sandboxes', { ttlSeconds: 5, extra: 1 }, 400, /extra/],
      ['POST', '/v1/sandboxes', { ttlSeconds: 60, maxLifetimeSeconds: 1e13 }, 400, /maxLifetimeSeconds/],
      ['POST', '/v1/sandboxes/sbx-missing/lease/renew', { ttlSeconds: 1e13 }, 400, /ttlSeconds/],
      ['POST', '/v1/sandboxes', '{not json', 400, /not valid JSON/],
      ['GET', '/v1/sandboxes?state=NOPE', undefined, 400, /state/],
      ['GET', '/v1/sandboxes?cursor=zzz', undefined, 400, /cursor/],
      ['GET', '/v1/sandboxes/sbx-missing', undefined, 404, /sandbox sbx-missing not found/],
      ['POST', '/v1/sandboxes/sbx-missing/exec', { command: ['true'] }, 404, /not found/],
      ['POST', '/v1/sandboxes/sbx-missing/exec', { command: [] }, 400, /command/],
      ['POST', '/v1/sandboxes/sbx-missing/lease/renew', { ttlSeconds: 5 }, 404, /not found/],
      ['POST', '/v1/sandboxes/sbx-missing/destroy', {}, 404, /not found/],
      ['GET', '/v1/nothing', undefined, 404, /no route/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await h.api(method, path, body);
      expect({ path, status: res.status }).toEqual({ path, status });
      expect(res.body.error.message).toMatch(message);
    }
  });

  it('reports an unknown template as 400 and leaves nothing behind', async () => {
    const res = await create({ ttlSeconds: 5, template: 'windows-xp' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe("unknown template 'windows-xp' for driver process; available: default");
    const id = res.body.error.details.sandbox.id;
    const done = await untilDestroyed(id);
    expect(done.error).toMatch(/unknown template/);
    expect((await settledEvents(h, id, 'DESTROYED')).map((e) => e.to)).toEqual([
      'REQUESTED',
      'PROVISIONING',
      'FAILED',
      'DESTROYING',
      'DESTROYED',
    ]);
  });

  it('paginates the list with a cursor', async () => {
    const label = `page-${Date.now()}`;
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await create({ ttlSeconds: 60, labels: { page: label }, wait: false })).body.id);
    }
    await eventually(async () => (await h.api('GET', `/v1/sandboxes?label=page=${label}`)).body.items.length === 3);
    const p1 = await h.api('GET', `/v1/sandboxes?label=page=${label}&limit=2`);
    expect(p1.body.items).toHaveLength(2);
    const p2 = await h.api('GET', `/v1/sandboxes?label=page=${label}&limit=2&cursor=${p1.body.nextCursor}`);
    expect(p2.body.items).toHaveLength(1);
    expect(p2.body.nextCursor).toBeNull();
    expect([...p1.body.items, ...p2.body.items].map((s: SandboxStatus) => s.id).sort()).toEqual(ids.sort());
    for (const id of ids) await h.api('DELETE', `/v1/sandboxes/${id}`);
  });
});
