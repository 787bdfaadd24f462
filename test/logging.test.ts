// The service's logs while a sandbox lives and dies: request lines with their id (also returned as
// X-Request-Id) and the sandbox's id; worker, activity and SDK lines carrying the sandboxId; no
// bearer token, command or payload anywhere.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { captureLogs, type CapturedLogs } from '../log/destination';
import { eventually, settledEvents, startHarness, type Harness } from './support/harness';

// Before the logger is made (imports are hoisted above this file's other statements): the SDK's
// own activity and workflow lines are debug ones.
const previousLevel = vi.hoisted(() => {
  const previous = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'debug';
  return previous;
});

const TOKEN = `tok-${randomBytes(16).toString('hex')}`;
type LogRecord = Record<string, unknown>;

describe('structured logs', () => {
  let h: Harness;
  let logs: CapturedLogs;

  beforeAll(async () => {
    logs = captureLogs();
    h = await startHarness({ tokens: [{ owner: 'ops', role: 'admin', token: TOKEN }] });
  });

  afterAll(async () => {
    await h?.close();
    logs?.restore();
    if (previousLevel === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = previousLevel;
  });

  const get = (headers: Record<string, string>) =>
    fetch(`${h.baseUrl}/v1/sandboxes`, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
  const requestLine = (reqId: string) =>
    eventually(async () => logs.records().find((r) => r.reqId === reqId && r.req !== undefined));

  it('answers every request with an X-Request-Id: its own, or a safe one the caller sent', async () => {
    const generated = (await get({})).headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await requestLine(generated!)).toMatchObject({ component: 'api', req: { method: 'GET' } });

    expect((await get({ 'x-request-id': 'client-trace.42_a' })).headers.get('x-request-id')).toBe('client-trace.42_a');

    for (const unsafe of ['x'.repeat(129), 'has space', 'quote"and{brace}']) {
      const id = (await get({ 'x-request-id': unsafe })).headers.get('x-request-id');
      expect(id).not.toBe(unsafe);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
    // Refused by auth: still an id, still a line.
    const refused = await fetch(`${h.baseUrl}/v1/sandboxes`);
    expect(refused.status).toBe(401);
    expect((await requestLine(refused.headers.get('x-request-id')!)).level).toBe('warn');
  });

  it("logs a sandbox's life as JSON lines with its sandboxId; never the token, commands or payloads", async () => {
    const marker = `marker-${randomBytes(6).toString('hex')}`;
    const created = await h.api('POST', '/v1/sandboxes', { ttlSeconds: 120 });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const exec = await h.api('POST', `/v1/sandboxes/${id}/exec`, {
      command: ['echo', marker],
      env: { SECRET: marker },
    });
    expect(exec.body.stdout).toBe(`${marker}\n`);
    const payload = Buffer.from(`payload-${marker}`).toString('base64');
    expect((await h.api('POST', '/v1/codec/encode', { payloads: [{ metadata: {}, data: payload }] })).status).toBe(200);
    expect((await h.api('DELETE', `/v1/sandboxes/${id}`)).status).toBe(202);
    await settledEvents(h, id, 'DESTROYED');
    await eventually(async () => logs.records().some((r) => r.msg === 'sandbox destroyed' && r.sandboxId === id));

    // Every line is one JSON object with a level, a time and a message.
    const text = logs.text();
    const records: LogRecord[] = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LogRecord);
    for (const r of records) expect(r).toMatchObject({ level: expect.any(String), time: expect.any(String) });

    // Request lines: method, path, status, reqId and — for this sandbox's paths — its sandboxId.
    const requests = records.filter((r) => r.component === 'api' && r.req !== undefined);
    const line = (method: string, url: string) =>
      requests.find((r) => (r.req as LogRecord).method === method && (r.req as LogRecord).url === url);
    for (const [method, url] of [
      ['POST', '/v1/sandboxes'], // its id only in the answer's Location
      ['POST', `/v1/sandboxes/${id}/exec`],
      ['DELETE', `/v1/sandboxes/${id}`],
    ] as const) {
      expect(line(method, url), `${method} ${url}`).toMatchObject({
        sandboxId: id,
        reqId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        res: { statusCode: expect.any(Number) },
        responseTime: expect.any(Number),
      });
    }
    expect(line('POST', '/v1/codec/encode')).not.toHaveProperty('sandboxId');

    // Worker lines: the workflow's transitions, the activities' own lines and the SDK's.
    const about = records.filter((r) => r.sandboxId === id);
    const workflowLines = about.filter((r) => r.component === 'workflow');
    expect(workflowLines.map((r) => (r as { to?: string }).to)).toEqual(
      expect.arrayContaining(['RUNNING', 'DESTROYING', 'DESTROYED']),
    );
    expect(about.filter((r) => r.component === 'activity').map((r) => r.msg)).toEqual(
      expect.arrayContaining(['sandbox created', 'sandbox destroyed']),
    );
    const sdkLines = records.filter((r) => r.workflowId === `sandbox:${id}`);
    expect(sdkLines.some((r) => r.msg === 'Activity started')).toBe(true);
    for (const r of sdkLines) expect(r.sandboxId, JSON.stringify(r)).toBe(id);
    // Any line that names the sandbox at all says so in sandboxId.
    for (const r of records.filter((x) => JSON.stringify(x).includes(id))) {
      expect(r.sandboxId, JSON.stringify(r)).toBe(id);
    }

    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(marker);
    expect(text).not.toContain(payload);
  });
});
