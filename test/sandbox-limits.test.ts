// Resource limits through the API, on the real worker and process driver: a create asks for limits
// within the operator's maxima (template defaults first); a fork bomb, a memory bomb and a /tmp fill
// inside one sandbox are stopped by the kernel while the service and a neighbour carry on.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    limitsEnv: {
      HOURGLASS_MAX_MEMORY_MIB: '1024',
      HOURGLASS_MAX_PIDS: '512',
      HOURGLASS_TEMPLATE_LIMITS: '{"default":{"pids":96,"tmpMiB":16}}',
    },
  });
});
afterAll(() => h?.close());

const create = (body: Record<string, unknown>) => h.api('POST', '/v1/sandboxes', { ttlSeconds: 120, ...body });
const exec = (id: string, command: string[], timeoutSeconds = 30) =>
  h.api(`POST`, `/v1/sandboxes/${id}/exec`, { command, timeoutSeconds });

describe('limits asked for through the API', () => {
  it('refuses limits past the operator maximum, naming the field and the maximum', async () => {
    const res = await create({ limits: { memoryMiB: 4096 } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: {
        code: 'invalid_argument',
        message: 'limits.memoryMiB: 4096 exceeds the operator maximum 1024 (HOURGLASS_MAX_MEMORY_MIB)',
      },
    });
    const bad = await create({ limits: { pids: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^limits\.pids: /);
  });

  it('applies the template defaults under the request, and reports what the kernel enforces', async () => {
    const { body: sbx, status } = await create({ template: 'default', limits: { memoryMiB: 192 } });
    expect(status).toBe(201);
    expect(sbx.limits).toMatchObject({ memoryMiB: 192, pids: 96, tmpMiB: 16 });
    expect(sbx.isolation).toMatch(/memory 192 MiB, pids 96/);
    const row = await h.pool.query('SELECT limits FROM sandboxes WHERE id = $1', [sbx.id]);
    expect(row.rows[0].limits).toMatchObject({ memoryMiB: 192, pids: 96 });
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
  });
});

describe('a hostile sandbox', () => {
  it(
    'is stopped by its limits — fork bomb, memory bomb, /tmp fill — ' + 'while the service and its neighbour carry on',
    async () => {
      const { body: bomb } = await create({ limits: { pids: 64, memoryMiB: 64, tmpMiB: 8, diskMiB: 32 } });
      const { body: neighbour } = await create({});
      expect(bomb.state).toBe('RUNNING');

      // The fork bomb runs while the neighbour keeps answering and new sandboxes can be made.
      const forkBomb = exec(bomb.id, ['bash', '-c', 'f(){ f | f; }; f'], 5);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await exec(neighbour.id, ['echo', 'fine'])).body).toMatchObject({ exitCode: 0, stdout: 'fine\n' });
      const { body: another, status } = await create({});
      expect(status).toBe(201);
      const bombed = (await forkBomb).body;
      expect(bombed).toMatchObject({ timedOut: true });
      expect(bombed.stderr).toMatch(/fork: retry: Resource temporarily unavailable|Cannot fork/);
      expect(spawnSync('true').status).toBe(0);

      const memory = await exec(bomb.id, ['sh', '-c', 'head -c 512M /dev/zero | tail > /dev/null']);
      expect(memory.body.exitCode).toBe(137);

      const fill = await exec(bomb.id, ['sh', '-c', 'head -c 64M /dev/zero > /tmp/fill; stat -c %s /tmp/fill']);
      expect(fill.body.stderr).toMatch(/No space left on device/);
      expect(Number(fill.body.stdout.trim())).toBe(8 * 1024 * 1024);

      // Still a working sandbox, and a healthy service.
      expect((await exec(bomb.id, ['echo', 'alive'])).body.stdout).toBe('alive\n');
      expect((await h.api('GET', `/v1/sandboxes/${neighbour.id}`)).body.state).toBe('RUNNING');
      for (const s of [bomb, neighbour, another]) await h.api('DELETE', `/v1/sandboxes/${s.id}`);
    },
    120_000,
  );
});
