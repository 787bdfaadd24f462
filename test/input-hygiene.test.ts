// Bad input is a 400 naming the field, never a 500 and never a write that fails forever later;
// whatever bytes a command prints are kept exactly. Real API, worker, Temporal and PostgreSQL.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';

let h: Harness;
let sbx: SandboxStatus;
beforeAll(async () => {
  h = await startHarness();
  sbx = (await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 120 })).body;
});
afterAll(() => h?.close());

/** A raw request: the body is sent exactly as given (no JSON.stringify on our side). */
async function raw(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(h.baseUrl + path, {
    method,
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('strings that cannot be stored or passed on', () => {
  it.each([
    ['a NUL in a label value', '{"ttlSeconds":60,"labels":{"a":"x\\u0000y"}}', 'labels.a', /NUL/],
    ['a NUL in a label key', '{"ttlSeconds":60,"labels":{"a\\u0000":"x"}}', "labels key 'a?'", /NUL/],
    ['a lone surrogate in a label', '{"ttlSeconds":60,"labels":{"a":"\\ud800"}}', 'labels.a', /lone surrogate/],
    ['a lone low surrogate in a template', '{"ttlSeconds":60,"template":"x\\udc00"}', 'template', /lone surrogate/],
  ])('refuses %s with 400 naming the field, and creates nothing', async (_what, body, field, problem) => {
    const before = (await h.pool.query('SELECT count(*)::int AS n FROM sandboxes')).rows[0].n;
    const res = await raw('POST', '/v1/sandboxes', body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_argument');
    expect(res.body.error.message.startsWith(`${field}: `)).toBe(true);
    expect(res.body.error.message).toMatch(problem);
    expect((await h.pool.query('SELECT count(*)::int AS n FROM sandboxes')).rows[0].n).toBe(before);
  });

  it('refuses a NUL in a destroy reason, an exec argument or an env value, and in a query string', async () => {
    const reason = await raw('POST', `/v1/sandboxes/${sbx.id}/destroy`, '{"reason":"bye\\u0000"}');
    expect(reason.status).toBe(400);
    expect(reason.body.error.message).toMatch(/^reason: /);
    const arg = await raw('POST', `/v1/sandboxes/${sbx.id}/exec`, '{"command":["echo","a\\u0000b"]}');
    expect(arg.body.error.message).toMatch(/^command\.1: /);
    const env = await raw('POST', `/v1/sandboxes/${sbx.id}/exec`, '{"command":["env"],"env":{"X":"\\ud83d"}}');
    expect(env.body.error.message).toMatch(/^env\.X: .*lone surrogate/);
    const query = await raw('GET', '/v1/sandboxes?label=a%3Db%00');
    expect(query.status).toBe(400);
    expect(query.body.error.message).toMatch(/^query\.label: /);
    expect((await h.api('GET', `/v1/sandboxes/${sbx.id}`)).body.state).toBe('RUNNING');
  });

  it('refuses a charset other than UTF-8', async () => {
    for (const charset of ['latin1', 'iso-8859-1', 'utf-16', 'x-nonsense']) {
      const res = await raw('POST', '/v1/sandboxes', '{"ttlSeconds":60}', {
        'content-type': `application/json; charset=${charset}`,
      });
      expect(res.status, charset).toBe(400);
      expect(res.body.error.message).toMatch(/charset/);
    }
    expect(
      (
        await raw('POST', '/v1/sandboxes', '{"ttlSeconds":1,"wait":false}', {
          'content-type': 'application/json; charset=UTF-8',
        })
      ).status,
    ).toBe(201);
  });
});

describe('ids and cursors', () => {
  it('bad percent-encoding and impossible ids are 400', async () => {
    for (const path of [
      '/v1/sandboxes/%00',
      '/v1/sandboxes/%FF',
      '/v1/sandboxes/%E0%A4%A',
      '/v1/sandboxes/a%00b/events',
      '/v1/sessions/%FF',
      '/v1/jobs/%00',
    ]) {
      const res = await raw('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe('invalid_argument');
    }
    expect((await raw('POST', '/v1/sandboxes/%C0%80/exec', '{"command":["true"]}')).status).toBe(400);
  });

  it('a cursor that this API did not hand out is 400', async () => {
    const forged = [
      'not-base64!',
      Buffer.from('["1","x"]').toString('base64url'),
      Buffer.from('["2020-01-01T00:00:00.000Z","x\\u0000"]').toString('base64url'),
      Buffer.from('["2020-13-45T99:00:00.000Z","sbx-1"]').toString('base64url'),
      Buffer.from('["2024-02-31T00:00:00.000Z","sbx-0"]').toString('base64url'),
      Buffer.from('["0000-01-01T00:00:00.000Z","sbx-0"]').toString('base64url'),
      Buffer.from('{"a":1}').toString('base64url'),
      'A'.repeat(5000),
    ];
    for (const cursor of forged) {
      const res = await raw('GET', `/v1/sandboxes?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.error.message).toMatch(/^cursor: /);
    }
    const page = await h.api('GET', '/v1/sandboxes?limit=1');
    if (page.body.nextCursor) {
      expect((await h.api('GET', `/v1/sandboxes?limit=1&cursor=${page.body.nextCursor}`)).status).toBe(200);
    }
  });
});

describe('command output is kept byte for byte', () => {
  it('NUL bytes, invalid UTF-8 and multi-byte text survive the answer and the execs record', async () => {
    // printf: NUL, the bytes FF FE (never valid UTF-8), and "é" (C3 A9).
    const res = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, {
      command: ['sh', '-c', "printf 'a\\000b'; printf '\\377\\376\\303\\251' >&2"],
    });
    expect(res.status).toBe(200);
    expect(res.body.stdout).toBe('a\0b');
    expect(res.body.stdoutBase64).toBeUndefined(); // NUL is valid UTF-8
    expect(Buffer.from(res.body.stderrBase64, 'base64')).toEqual(Buffer.from([0xff, 0xfe, 0xc3, 0xa9]));
    expect(res.body.stderr).toBe('\ufffd\ufffdé');

    const execs = await h.api('GET', `/v1/sandboxes/${sbx.id}/execs`);
    const rec = execs.body.items.find((e: { command: string[] }) => e.command[2]?.includes('\\377'));
    expect(rec).toMatchObject({ exitCode: 0, stdout: 'a\0b' });
    expect(Buffer.from(rec.stderrBase64, 'base64')).toEqual(Buffer.from([0xff, 0xfe, 0xc3, 0xa9]));
  });

  it('records env names, never their values', async () => {
    const res = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, {
      command: ['sh', '-c', 'echo ${#API_KEY}'],
      env: { API_KEY: 'hunter2-secret' },
    });
    expect(res.body.stdout).toBe('14\n');
    const execs = await h.api('GET', `/v1/sandboxes/${sbx.id}/execs`);
    const rec = execs.body.items.find((e: { envNames: string[] }) => e.envNames.includes('API_KEY'));
    expect(rec.envNames).toEqual(['API_KEY']);
    expect(JSON.stringify(execs.body)).not.toContain('hunter2-secret');
    const stored = await h.pool.query('SELECT * FROM execs WHERE sandbox_id = $1', [sbx.id]);
    expect(JSON.stringify(stored.rows)).not.toContain('hunter2-secret');
  });
});

describe('jobs with binary output', () => {
  it(
    'complete and are recorded: ' + 'NUL bytes and a multi-byte character cut at the excerpt never stall the registry',
    async () => {
      // 4095 ASCII bytes then an emoji (a surrogate pair in JS) straddling the 4096-character excerpt.
      const straddle = `printf '%4095s' x | tr ' ' a; printf '\\360\\237\\230\\200'`;
      const res = await h.api('POST', '/v1/jobs', {
        commands: [
          ['sh', '-c', "printf 'a\\000b'"],
          ['sh', '-c', 'head -c 300000 /dev/urandom'],
          ['sh', '-c', straddle],
        ],
        ttlSeconds: 60,
      });
      expect(res.status).toBe(201);
      const job = await eventually(async () => {
        const { rows } = await h.pool.query('SELECT state, job FROM sandboxes WHERE id = $1', [res.body.id]);
        return rows[0]?.state === 'DESTROYED' ? rows[0] : undefined;
      }, 30_000);
      expect(job.job.state).toBe('COMPLETED');
      expect(job.job.steps).toHaveLength(3);
      expect(job.job.steps[0].stdout).toBe('a\ufffdb'); // the registry's copy; exact bytes are in /execs
      expect(job.job.steps[1].stdoutBase64).toBeUndefined();
      expect(job.job.steps[1].stdout.length).toBeLessThan(5000);
      const execs = await h.api('GET', `/v1/sandboxes/${res.body.id}/execs`);
      expect(execs.body.items[0].stdout).toBe('a\0b');
      expect(execs.body.items[1].stdoutBase64).toBeDefined();
    },
  );
});

describe('auth off: only this machine, never a web page', () => {
  /** node:http, so that Host can be anything (fetch sets it from the URL). */
  const request = (path: string, headers: Record<string, string>, method = 'GET') =>
    new Promise<{ status: number; body: { error: { message: string } } }>((resolve, reject) => {
      const req = http.request(`${h.baseUrl}${path}`, { method, headers }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
      });
      req.on('error', reject);
      req.end();
    });

  it('refuses a request addressed to another host (DNS rebinding) and one from a foreign web page (CSRF)', async () => {
    const port = new URL(h.baseUrl).port;
    const rebound = await request('/v1/sandboxes', { host: `evil.example:${port}` });
    expect(rebound.status).toBe(403);
    expect(rebound.body.error.message).toMatch(/only requests addressed to loopback/);
    const csrf = await request(
      `/v1/sandboxes/${sbx.id}/destroy`,
      { host: `localhost:${port}`, origin: 'https://evil.example' },
      'POST',
    );
    expect(csrf.status).toBe(403);
    expect(csrf.body.error.message).toMatch(/web pages from "https:\/\/evil.example"/);
    expect((await h.api('GET', `/v1/sandboxes/${sbx.id}`)).body.state).toBe('RUNNING');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await request('/v1/sandboxes?limit=1', { host, origin: 'http://localhost:8233' })).status, host).toBe(
        200,
      );
    }
    expect((await request('/healthz', { host: 'evil.example' })).status).toBe(200);
  });
});

describe('exec racing a destroy', () => {
  it('is 409 naming the destroy, not a 502', async () => {
    const victim = (await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 60 })).body;
    const running = h.api('POST', `/v1/sandboxes/${victim.id}/exec`, { command: ['sleep', '30'] });
    await eventually(
      async () => (await h.pool.query('SELECT 1 FROM execs WHERE sandbox_id = $1', [victim.id])).rowCount === 1,
    );
    await h.api('DELETE', `/v1/sandboxes/${victim.id}`, { reason: 'agent done' });
    const res = await running;
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({
      code: 'invalid_state',
      details: { destroyReason: 'agent done (destroy requested by local)', operation: 'exec' },
    });
    expect(res.body.error.message).toMatch(
      /destroyed while the command ran \(agent done \(destroy requested by local\)\)/,
    );
  });
});
