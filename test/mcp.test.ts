// `hourglass mcp` as an agent's MCP client runs it: the SDK's own Client spawns the real command over
// stdio, against the real API, worker and process driver (test/support/harness.ts).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionStatus } from '../workflows/messages';
import type { SandboxStatus } from '../workflows/types';
import { eventually, startHarness, type Harness } from './support/harness';
import { REPO } from './support/service-run';

const TOKEN = randomBytes(16).toString('hex');
const OWNER = 'mcp-agent';
const TOOLS = [
  'create_sandbox',
  'destroy_sandbox',
  'exec',
  'list_files',
  'list_sandboxes',
  'read_file',
  'renew_lease',
  'write_file',
];

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ tokens: [{ owner: OWNER, role: 'user', token: TOKEN }] });
});
afterAll(() => h?.close());

interface Connection {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
}

/** Spawns `hourglass mcp` as an MCP client would (URL as a flag, token from the environment). */
async function connect(url = h.baseUrl): Promise<Connection> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  // vitest's loader hooks must not leak into the child.
  delete env.NODE_OPTIONS;
  env.HOURGLASS_TOKEN = TOKEN;
  env.LOG_LEVEL = 'info';
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'cli/main.ts', 'mcp', '--url', url],
    cwd: REPO,
    env,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const client = new Client({ name: 'hourglass-test', version: '1.0.0' });
  // Anything but protocol on the server's stdout would arrive here as a parse error.
  const protocolErrors: Error[] = [];
  client.onerror = (err) => protocolErrors.push(err);
  await client.connect(transport);
  return { client, transport, stderr: () => stderr + protocolErrors.map((e) => `\nprotocol: ${e.message}`).join('') };
}

const call = (c: Connection, name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void) =>
  c.client.callTool({ name, arguments: args }, undefined, {
    onprogress,
    timeout: 90_000,
  }) as Promise<CallToolResult>;

/** The text of a result's content items. */
const texts = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : `<${c.type}>`));
const jsonOf = <T>(r: CallToolResult): T => {
  expect(r.isError, texts(r).join('\n')).toBeFalsy();
  return JSON.parse(texts(r)[0]!) as T;
};
const sandbox = async (id: string) => (await h.api<SandboxStatus>('GET', `/v1/sandboxes/${id}`)).body;

describe('hourglass mcp', () => {
  it('lists its eight tools, each with an input schema', async () => {
    const c = await connect();
    try {
      const { tools } = await c.client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
      for (const t of tools) {
        expect(t.inputSchema.type, t.name).toBe('object');
        expect(t.description?.length, t.name).toBeGreaterThan(40);
      }
      const exec = tools.find((t) => t.name === 'exec')!;
      expect(exec.inputSchema.required).toEqual(expect.arrayContaining(['sandboxId', 'command']));
      expect(exec.inputSchema.properties).toMatchObject({ command: { type: 'array', minItems: 1 } });
      // The API's own limits came along (renewBody's ttlSeconds), not a restatement.
      const renew = tools.find((t) => t.name === 'renew_lease')!;
      expect(renew.inputSchema.properties).toMatchObject({
        ttlSeconds: { type: 'integer', exclusiveMinimum: 0, maximum: 366 * 24 * 3600 },
      });
    } finally {
      await c.client.close();
    }
  });

  it('create → write_file → exec (with progress) → read_file → list_files → renew → destroy', async () => {
    const c = await connect();
    try {
      const created = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', { ttlSeconds: 300, labels: { t: 'mcp' } }));
      expect(created).toMatchObject({ state: 'RUNNING', driver: 'process', labels: { t: 'mcp' } });
      expect(created.sessionId).toMatch(/^ses-/);
      const id = created.id;

      // A directory that does not exist yet: write_file makes it (mkdir -p), as an agent expects.
      const content = 'héllo ✓\nsecond line\n';
      const written = jsonOf<{ path: string; size: number; sha256: string }>(
        await call(c, 'write_file', { sandboxId: id, path: 'notes/hello.txt', content }),
      );
      expect(written.path).toMatch(/\/notes\/hello\.txt$/);
      expect(written.size).toBe(Buffer.byteLength(content));
      expect(written.sha256).toBe(createHash('sha256').update(content).digest('hex'));

      // Prints for ~1.5 s: progress notifications carry the output while it runs.
      const progress: Progress[] = [];
      const script =
        'for i in 1 2 3 4 5 6; do echo line $i; sleep 0.25; done; cat notes/hello.txt; echo oops >&2; exit 3';
      const calledAt = Date.now();
      let firstAt = 0;
      const ran = await call(c, 'exec', { sandboxId: id, command: ['sh', '-c', script] }, (p) => {
        firstAt ||= Date.now();
        progress.push(p);
      });
      expect(ran.isError, texts(ran).join('\n')).toBeFalsy();
      const tookMs = Date.now() - calledAt;
      console.log(`mcp: exec answered in ${tookMs} ms, first progress ${firstAt - calledAt} ms after the call`);
      const [head, output] = texts(ran);
      expect(head).toMatch(/^exit code 3 \(\d+\.\d s\)$/);
      expect(output).toBe(
        'stdout:\nline 1\nline 2\nline 3\nline 4\nline 5\nline 6\nhéllo ✓\nsecond line\n\nstderr:\noops\n',
      );
      expect(progress.length).toBeGreaterThanOrEqual(2);
      // Strictly growing, as the protocol requires.
      const values = progress.map((p) => p.progress);
      expect(values).toEqual([...values].sort((x, y) => x - y));
      expect(new Set(values).size).toBe(values.length);
      // One came while the command still ran (before its last line); none came after the result
      // (the client would report it as a progress notification for an unknown token).
      expect(progress.some((p) => p.message?.includes('line 1') && !p.message.includes('line 6'))).toBe(true);
      expect(c.stderr()).not.toContain('unknown token');

      const piped = await call(c, 'exec', { sandboxId: id, command: ['wc', '-c'], stdin: 'four' });
      expect(texts(piped)).toEqual([expect.stringMatching(/^exit code 0 /), 'stdout:\n4\n\nstderr: (empty)']);

      const read = await call(c, 'read_file', { sandboxId: id, path: 'notes/hello.txt' });
      expect(read.isError).toBeFalsy();
      expect(texts(read)[0]).toBe(content);
      expect(JSON.parse(texts(read)[1]!)).toMatchObject({
        encoding: 'utf-8',
        size: written.size,
        sha256: written.sha256,
      });

      // Bytes that are not UTF-8 go both ways as base64.
      const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10]);
      jsonOf(await call(c, 'write_file', { sandboxId: id, path: 'bin.dat', contentBase64: bytes.toString('base64') }));
      const readBytes = await call(c, 'read_file', { sandboxId: id, path: 'bin.dat' });
      expect(Buffer.from(texts(readBytes)[0]!, 'base64')).toEqual(bytes);
      expect(JSON.parse(texts(readBytes)[1]!)).toMatchObject({ encoding: 'base64', size: 6 });

      const listed = await call(c, 'list_files', { sandboxId: id, path: 'notes' });
      expect(listed.isError).toBeFalsy();
      expect(texts(listed)[0]).toMatch(new RegExp(`^- 644 ${written.size} \\S+ hello\\.txt$`, 'm'));
      const top = texts(await call(c, 'list_files', { sandboxId: id }))[0]!;
      expect(top).toMatch(/^d \d+ \d+ \S+ notes\/$/m);
      expect(top).toMatch(/^- \d+ 6 \S+ bin\.dat$/m);

      const mine = jsonOf<{ items: { id: string }[] }>(await call(c, 'list_sandboxes', {}));
      expect(mine.items.map((s) => s.id)).toEqual([id]);
      const running = jsonOf<{ items: { id: string }[] }>(
        await call(c, 'list_sandboxes', { all: true, state: ['RUNNING'] }),
      );
      expect(running.items.map((s) => s.id)).toContain(id);

      const before = Date.parse((await sandbox(id)).expiresAt!);
      const renewed = jsonOf<{ expiresAt: string }>(await call(c, 'renew_lease', { sandboxId: id, ttlSeconds: 1200 }));
      expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(before + 800_000);

      const destroyed = jsonOf<SandboxStatus>(await call(c, 'destroy_sandbox', { sandboxId: id }));
      expect(destroyed.state).toBe('DESTROYED');
      expect(destroyed.destroyReason).toContain('destroyed by the agent over MCP');
    } finally {
      await c.client.close();
    }
  });

  it('answers refusals as tool errors with the API code, and keeps serving', async () => {
    const c = await connect();
    try {
      const { id } = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
      const escape = await call(c, 'read_file', { sandboxId: id, path: '../../../../etc/passwd' });
      expect(escape.isError).toBe(true);
      expect(texts(escape)[0]).toMatch(/^invalid_argument: /);

      const unknown = await call(c, 'exec', { sandboxId: 'sbx-doesnotexist', command: ['true'] });
      expect(unknown.isError).toBe(true);
      expect(texts(unknown)[0]).toMatch(/^not_found: /);

      const both = await call(c, 'write_file', { sandboxId: id, path: 'x', content: 'a', contentBase64: 'YQ==' });
      expect(both.isError).toBe(true);
      expect(texts(both)[0]).toMatch(/^invalid_argument: .*exactly one/);

      // Input the schema refuses never reaches the API (the SDK answers with its validation error).
      const bad = await call(c, 'exec', { sandboxId: id, command: [] });
      expect(bad.isError).toBe(true);
      expect(texts(bad)[0]).toMatch(/must name a program/);

      jsonOf(await call(c, 'destroy_sandbox', { sandboxId: id }));
      const late = await call(c, 'exec', { sandboxId: id, command: ['true'] });
      expect(late.isError).toBe(true);
      expect(texts(late)[0]).toMatch(/^invalid_state: .*DESTROY/);

      // Still serving after all that.
      expect((await c.client.listTools()).tools).toHaveLength(TOOLS.length);
    } finally {
      await c.client.close();
    }
  });

  it('cuts big answers to a size for a model, saying so', async () => {
    const c = await connect();
    try {
      const { id } = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
      // ~1.3 MB of stdout: the first 4 KiB and the last 12 KiB come back, with the count of the rest.
      const ran = await call(c, 'exec', { sandboxId: id, command: ['sh', '-c', 'seq 1 200000 | tee big.txt'] });
      const output = texts(ran)[1]!;
      const total = Buffer.byteLength(Array.from({ length: 200_000 }, (_, i) => `${i + 1}\n`).join(''));
      expect(output.startsWith('stdout:\n1\n2\n3\n')).toBe(true);
      expect(output).toContain(`[… ${(total - 16 * 1024).toLocaleString('en')} bytes of stdout left out;`);
      expect(output).toMatch(/\n199999\n200000\n\nstderr: \(empty\)$/);
      expect(Buffer.byteLength(output)).toBeLessThan(17 * 1024);

      const read = await call(c, 'read_file', { sandboxId: id, path: 'big.txt', maxBytes: 1000 });
      expect(texts(read)[0]).toHaveLength(1000);
      expect(JSON.parse(texts(read)[1]!)).toMatchObject({
        size: total,
        truncated: `only the first 1000 of ${total} bytes are shown`,
      });
    } finally {
      await c.client.close();
    }
  });

  it('ends an exec that its sandbox is destroyed under with a tool error naming why', async () => {
    const c = await connect();
    try {
      const { id } = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
      const progress: Progress[] = [];
      const running = call(c, 'exec', { sandboxId: id, command: ['sh', '-c', 'echo started; sleep 60'] }, (p) =>
        progress.push(p),
      );
      await eventually(async () => progress.some((p) => p.message?.includes('started')));
      expect((await h.api('POST', `/v1/sandboxes/${id}/destroy`, { reason: 'pulled' })).status).toBeLessThan(300);
      const ended = await running;
      expect(ended.isError).toBe(true);
      expect(texts(ended)[0]).toMatch(/^invalid_state: .*destroyed while the command ran \(pulled/);
      expect(texts(ended)[1]).toContain('started');
    } finally {
      await c.client.close();
    }
  });

  it('kills the command when the caller cancels the exec call', async () => {
    const c = await connect();
    try {
      const { id } = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
      const progress: Progress[] = [];
      const cancel = new AbortController();
      const running = c.client.callTool(
        { name: 'exec', arguments: { sandboxId: id, command: ['sh', '-c', 'echo started; sleep 60'] } },
        undefined,
        { signal: cancel.signal, onprogress: (p) => progress.push(p) },
      );
      await eventually(async () => progress.some((p) => p.message?.includes('started')));
      cancel.abort('enough');
      await expect(running).rejects.toThrow();
      const killed = await eventually(async () => {
        const { body } = await h.api<{ items: { state: string; command: string[] }[] }>(
          'GET',
          `/v1/sandboxes/${id}/execs`,
        );
        return body.items.find((e) => e.command[2]?.includes('sleep 60') && e.state === 'killed');
      }, 15_000);
      expect(killed.state).toBe('killed');
      // The server goes on serving.
      const after = await call(c, 'exec', { sandboxId: id, command: ['echo', 'still here'] });
      expect(texts(after)[1]).toBe('stdout:\nstill here\n\nstderr: (empty)');
    } finally {
      await c.client.close();
    }
  });

  it('kills the command when the caller cancels the exec call before its stream started', async () => {
    // A proxy in front of the API holds back the answer to POST …/exec: the command runs, the MCP
    // server has not seen its `start` (nor its Hourglass-Exec-Id header) when the call is cancelled.
    let posted!: () => void;
    const execPosted = new Promise<void>((r) => (posted = r));
    const proxy = http.createServer((req, res) => {
      const up = http.request(h.baseUrl + req.url, { method: req.method, headers: req.headers }, (answer) => {
        const held = req.method === 'POST' && /\/exec$/.test(req.url ?? '');
        if (held) posted();
        res.on('close', () => answer.destroy());
        if (held) return; // never answered: the client gives up first
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const c = await connect(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    try {
      const { id } = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
      const cancel = new AbortController();
      const running = c.client.callTool(
        { name: 'exec', arguments: { sandboxId: id, command: ['sh', '-c', 'echo held; sleep 120'] } },
        undefined,
        { signal: cancel.signal },
      );
      await execPosted;
      cancel.abort('before start');
      await expect(running).rejects.toThrow();
      const killed = await eventually(async () => {
        const { body } = await h.api<{ items: { state: string; command: string[]; execId: string }[] }>(
          'GET',
          `/v1/sandboxes/${id}/execs`,
        );
        return body.items.find((e) => e.command[2]?.includes('sleep 120') && e.state === 'killed');
      }, 30_000).catch(async (err: unknown) => {
        const { rows } = await h.pool.query(
          'SELECT exec_id, finished_at, error, kill_requested FROM execs WHERE sandbox_id = $1',
          [id],
        );
        throw new Error(`not killed: ${JSON.stringify(rows)}; the MCP server's log:\n${c.stderr()}`, { cause: err });
      });
      expect(killed.execId).toMatch(/^k-[0-9a-f]{32}$/); // named by the key the MCP server sent
    } finally {
      await c.client.close();
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  it('opens a new session when its session was ended under it', async () => {
    const c = await connect();
    const a = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
    expect((await h.api('DELETE', `/v1/sessions/${a.sessionId}`)).status).toBe(202);
    await eventually(async () => (await sandbox(a.id)).state === 'DESTROYED', 30_000);
    const b = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
    expect(b.state).toBe('RUNNING');
    expect(b.sessionId).toMatch(/^ses-/);
    expect(b.sessionId).not.toBe(a.sessionId);
    await c.client.close();
    // The new session is the one that ends with the connection.
    await eventually(async () => (await sandbox(b.id)).state === 'DESTROYED', 30_000);
    expect(c.stderr()).toContain(`session ended under this MCP server`);
  });

  it('ends its session on SIGTERM too', async () => {
    const c = await connect();
    const { id } = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', {}));
    process.kill(c.transport.pid!, 'SIGTERM');
    const s = await eventually(async () => {
      const status = await sandbox(id);
      return status.state === 'DESTROYED' ? status : undefined;
    }, 30_000);
    expect(s.destroyReason).toContain('session ended');
    await c.client.close();
    expect(c.stderr()).toMatch(/session ended \(SIGTERM\)/);
  });

  it('ends its session when the client disconnects: its sandboxes are destroyed', async () => {
    const c = await connect();
    const a = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', { ttlSeconds: 600 }));
    const b = jsonOf<SandboxStatus>(await call(c, 'create_sandbox', { ttlSeconds: 600 }));
    expect(b.sessionId).toBe(a.sessionId);
    const pid = c.transport.pid!;
    const closedAt = Date.now();
    await c.client.close();
    // It exits by itself once stdin closes, before the SDK client's SIGTERM (2 s later).
    expect(Date.now() - closedAt).toBeLessThan(2000);
    expect(() => process.kill(pid, 0)).toThrow();
    for (const id of [a.id, b.id]) {
      const s = await eventually(async () => {
        const status = await sandbox(id);
        return status.state === 'DESTROYED' ? status : undefined;
      }, 30_000);
      expect(s.destroyReason).toContain('session ended');
    }
    const session = await h.api<SessionStatus>('GET', `/v1/sessions/${a.sessionId}`);
    expect(session.body).toMatchObject({ state: 'ENDED' });
    expect(c.stderr()).toMatch(/session ended \(stdin closed\)/);
    console.log(`mcp: both sandboxes DESTROYED ${Date.now() - closedAt} ms after the client closed`);
  });
});
