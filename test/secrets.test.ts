// Exec env values never reach Temporal in the clear: `temporal workflow show` (what the Web UI and
// anyone with access to the server or temporal.db sees) holds encrypted payloads only, and the
// codec endpoint decodes them for admins alone.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { findTemporalCli } from '../worker/temporal-server';
import { SandboxState } from '../workflows/search-attributes';
import type { SandboxStatus } from '../workflows/types';
import { startHarness, type Harness } from './support/harness';
import { sandboxWorkflowId } from '../workflows/ids';

const USER = 'secrets-user-token-0123456789';
const ADMIN = 'secrets-admin-token-0123456789';
const SECRET = `sk-live-${randomBytes(12).toString('hex')}`;

let h: Harness;
let sbx: SandboxStatus;
let temporalCli: string;
beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: 'agent', role: 'user', token: USER },
      { owner: 'ops', role: 'admin', token: ADMIN },
    ],
  });
  temporalCli = (await findTemporalCli(path.resolve('.hourglass'))) ?? 'temporal';
  sbx = (await h.api<SandboxStatus>('POST', '/v1/sandboxes', { ttlSeconds: 120 })).body;
  const ran = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, {
    command: ['sh', '-c', 'test "$API_KEY" = "$EXPECTED" && echo same'],
    env: { API_KEY: SECRET, EXPECTED: SECRET },
  });
  expect(ran.body).toMatchObject({ exitCode: 0, stdout: 'same\n' });
});
afterAll(() => h?.close());

const show = async (...extra: string[]) =>
  (
    await promisify(execFile)(
      temporalCli,
      [
        'workflow',
        'show',
        '--address',
        inject('temporalAddress'),
        '-w',
        sandboxWorkflowId(sbx.id),
        '--output',
        'json',
        ...extra,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    )
  ).stdout;

describe('secrets stay secret', () => {
  it('no exec env value appears in `temporal workflow show`: every payload is encrypted', async () => {
    const history = await show();
    expect(history).not.toContain(SECRET);
    expect(history).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 20));
    expect(history).toContain(Buffer.from('binary/encrypted').toString('base64'));
    // The command is encrypted too; search attributes (for the UI's lists) stay readable.
    expect(history).not.toContain('EXPECTED');
    const d = await h.client.workflow.getHandle(sandboxWorkflowId(sbx.id)).describe();
    expect(d.typedSearchAttributes.get(SandboxState)).toBe('RUNNING');
  });

  it('the codec endpoint decodes history for an admin, and refuses a user', async () => {
    const endpoint = `${h.baseUrl}/v1/codec`;
    const decoded = await show('--codec-endpoint', endpoint, '--codec-auth', `Bearer ${ADMIN}`);
    // JSON output keeps payload data base64: read every one.
    const payloadText = [...decoded.matchAll(/"data": "([A-Za-z0-9+/=]*)"/g)]
      .map((m) => Buffer.from(m[1]!, 'base64').toString())
      .join('\n');
    expect(payloadText).toContain(SECRET);
    expect(decoded).not.toContain(Buffer.from('binary/encrypted').toString('base64'));

    const asUser = await h.apiAs(USER)('POST', '/v1/codec/decode', { payloads: [] });
    expect(asUser.status).toBe(403);
    const anonymous = await h.apiAs(undefined)('POST', '/v1/codec/decode', { payloads: [] });
    expect(anonymous.status).toBe(401);
  });

  it("answers the Temporal UI's preflight from its origin only", async () => {
    const preflight = (origin: string) =>
      fetch(`${h.baseUrl}/v1/codec/decode`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-namespace',
        },
      });
    const ui = await preflight('http://localhost:8233');
    expect(ui.status).toBe(204);
    expect(ui.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
    expect(ui.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
    const elsewhere = await preflight('https://evil.example');
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('the execs record keeps env names only', async () => {
    const execs = await h.api('GET', `/v1/sandboxes/${sbx.id}/execs`);
    expect(execs.body.items[0].envNames).toEqual(['API_KEY', 'EXPECTED']);
    expect(JSON.stringify(execs.body)).not.toContain(SECRET);
  });
});
