// The `hourglass` command (cli/bin.js, as npx runs it) against the real API, Temporal, PostgreSQL
// and process driver: each command group, --json, exit codes, friendly errors, streams and files.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ID_PATTERN } from '../api/schemas';
import { SANDBOX_ID_PATTERN, parseOperand } from '../cli/sandbox-path';
import { eventually, startHarness, type Harness } from './support/harness';
import { REPO } from './support/service-run';

const USER = randomBytes(12).toString('hex');
const ADMIN = randomBytes(12).toString('hex');

let h: Harness;
let dir: string;
beforeAll(async () => {
  h = await startHarness({
    tokens: [
      { owner: 'cli-user', role: 'user', token: USER },
      { owner: 'cli-ops', role: 'admin', token: ADMIN },
    ],
  });
  dir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-cli-'));
});
afterAll(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

/** `hourglass <args>` as a process of its own; `input` is written to its stdin. */
function hourglass(
  args: string[],
  opts: {
    input?: Buffer | string;
    token?: string;
    url?: string;
    interruptOn?: string;
    /** Called with everything printed so far, on each piece of stdout. */
    onStdout?: (all: Buffer) => void;
  } = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOURGLASS_URL: opts.url ?? h.baseUrl,
    HOURGLASS_TOKEN: opts.token ?? USER,
  };
  delete env.NODE_OPTIONS; // vitest's loader hooks must not reach the child
  delete env.HOURGLASS_API_TOKEN;
  const child = spawn(process.execPath, [path.join(REPO, 'cli', 'bin.js'), ...args], {
    cwd: dir,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    out.push(c);
    // Ctrl-C, once the output says the command runs.
    if (opts.interruptOn && Buffer.concat(out).includes(opts.interruptOn)) child.kill('SIGINT');
    opts.onStdout?.(Buffer.concat(out));
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const raw = Buffer.concat(out);
      resolve({ code, stdout: raw.toString(), stderr, raw });
    });
  });
}

async function ok(args: string[], opts?: Parameters<typeof hourglass>[1]): Promise<Run> {
  const r = await hourglass(args, opts);
  if (r.code !== 0) throw new Error(`hourglass ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

const json = async <T = Record<string, unknown>>(args: string[], opts?: Parameters<typeof hourglass>[1]) =>
  JSON.parse((await ok(['--json', ...args], opts)).stdout) as T;

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

async function newSandbox(label = 'cli'): Promise<string> {
  const s = await json<{ id: string; state: string }>([
    'sandbox',
    'create',
    '--ttl',
    '120',
    '--label',
    `suite=${label}`,
  ]);
  expect(s.state).toBe('RUNNING');
  return s.id;
}

describe('hourglass sandbox (control plane)', () => {
  it('creates, shows, lists, renews, stops, starts, lists events and destroys', async () => {
    const id = await newSandbox('cli-life');
    expect((await ok(['sandbox', 'get', id])).stdout).toMatch(new RegExp(`^${id}  RUNNING\\n  owner +cli-user`));
    const list = await eventually(async () => {
      const l = await json<{ items: { id: string }[] }>(['sandbox', 'list', '--label', 'suite=cli-life']);
      return l.items.some((s) => s.id === id) ? l : undefined;
    });
    expect(list.items).toHaveLength(1);
    expect((await ok(['sandbox', 'list', '--label', 'suite=cli-life'])).stdout).toMatch(/RUNNING.*\n1 sandbox\(es\)/);
    expect((await ok(['sandbox', 'renew', id, '--ttl', '300'])).stdout).toMatch(/^lease renewed until \d{4}-/);
    expect((await ok(['sandbox', 'renew', id, '--ttl', '300', '--signal'])).stdout).toBe('renewal signal sent\n');
    expect((await ok(['sandbox', 'stop', id])).stdout).toMatch(/STOPPED/);
    expect((await ok(['sandbox', 'start', id])).stdout).toMatch(/RUNNING/);
    expect((await ok(['sandbox', 'destroy', id, '--reason', 'cli test'])).stdout).toBe(
      `${id}: destroy requested (was RUNNING)\n`,
    );
    const events = await eventually(async () => {
      const e = await json<{ items: { to: string; reason: string }[] }>(['sandbox', 'events', id]);
      return e.items.at(-1)?.to === 'DESTROYED' ? e : undefined;
    });
    expect(events.items.map((e) => e.to)).toContain('STOPPED');
    expect((await ok(['sandbox', 'events', id])).stdout).toMatch(/→ DESTROYED/);
  });

  it('exec waits (not a terminal) and exits with the command exit code; --json prints the result', async () => {
    const id = await newSandbox();
    const r = await hourglass(['sandbox', 'exec', id, '--', 'sh', '-c', 'echo hi; echo oops >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('hi\n\n[stderr]\noops\n\n[exit 3]\n');
    const out = await json(['sandbox', 'exec', id, '--env', 'GREETING=hello', '--', 'sh', '-c', 'echo $GREETING']);
    expect(out).toMatchObject({ exitCode: 0, stdout: 'hello\n' });
    const fed = await ok(['sandbox', 'exec', id, '--stream', '--stdin', '-', '--', 'wc', '-c'], {
      input: 'twelve bytes',
    });
    expect(fed.stdout).toBe('12\n');
    await ok(['sandbox', 'destroy', id, '--force']);
  });

  it('says what went wrong: the API code and message, the envelope with --json, an unreachable API', async () => {
    const missing = await hourglass(['sandbox', 'get', 'sbx-nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: not_found: .*sbx-nope/);
    const asJson = await hourglass(['--json', 'sandbox', 'get', 'sbx-nope']);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stderr)).toMatchObject({ error: { code: 'not_found' } });
    const bad = await hourglass(['sandbox', 'create', '--ttl', '-3']);
    expect(bad.stderr).toMatch(/^error: invalid_argument: ttlSeconds: /);
    const denied = await hourglass(['sandbox', 'list'], { token: 'wrong' });
    expect(denied.stderr).toMatch(/^error: unauthorized: /);
    const down = await hourglass(['sandbox', 'list'], { url: 'http://127.0.0.1:9' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the Hourglass API at http:\/\/127\.0\.0\.1:9 .*is `npm start` running/);
    const typo = await hourglass(['sandbox', 'create', '--ttl', 'soon']);
    expect(typo.stderr).toMatch(/expected a whole number \(got 'soon'\)/);
  });

  it('session create/get/heartbeat/end; a sandbox that joined it is destroyed with it', async () => {
    const s = await json<{ id: string; state: string }>(['session', 'create', '--heartbeat-timeout', '300']);
    expect(s.state).toBe('ACTIVE');
    const sbx = await json<{ id: string; sessionId: string }>(['sandbox', 'create', '--ttl', '60', '--session', s.id]);
    expect(sbx.sessionId).toBe(s.id);
    expect((await ok(['session', 'get', s.id])).stdout).toMatch(new RegExp(`sandboxes +${sbx.id}`));
    expect((await ok(['session', 'heartbeat', s.id])).stdout).toMatch(/alive until \d{4}-/);
    expect((await ok(['session', 'end', s.id])).stdout).toMatch(/ending/);
    await eventually(async () => (await json(['sandbox', 'get', sbx.id])).state === 'DESTROYED', 30_000);
  });

  it('job create --wait runs each line in order; job get shows the steps', async () => {
    const r = await ok(['job', 'create', '--ttl', '60', '--wait', 'echo one', 'echo two; exit 0']);
    expect(r.stdout).toMatch(/COMPLETED/);
    expect(r.stdout).toMatch(/1\. \[exit 0\] sh -c echo one\n +2\. \[exit 0\] sh -c echo two; exit 0/);
    const id = r.stdout.split(' ')[0]!;
    const job = await json<{ state: string; steps: { stdout: string }[] }>(['job', 'get', id]);
    expect(job.steps.map((s) => s.stdout)).toEqual(['one\n', 'two\n']);
    const failed = await hourglass(['job', 'create', '--ttl', '60', '--wait', 'exit 4']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/FAILED/);
  });

  it('destroy-all by label, and prune (admins only)', async () => {
    await Promise.all([newSandbox('cli-bulk'), newSandbox('cli-bulk')]);
    const all = await json<{ count: number; failed: number }>(['destroy-all', '--label', 'suite=cli-bulk', '--force']);
    expect(all).toMatchObject({ count: 2, failed: 0 });
    const refused = await hourglass(['prune', '--dry-run']);
    expect(refused.stderr).toMatch(/^error: forbidden: /);
    expect((await ok(['prune', '--dry-run'], { token: ADMIN })).stdout).toMatch(
      /drift\(s\) \(dry run: nothing changed\)/,
    );
  });
});

describe('hourglass sandbox (data plane)', () => {
  let id: string;
  beforeAll(async () => {
    id = await newSandbox('cli-data');
  });
  afterAll(() => hourglass(['sandbox', 'destroy', id, '--force']));

  it('exec --stream writes stdout and stderr as they come and exits with the exit code', async () => {
    const r = await hourglass([
      'sandbox',
      'exec',
      id,
      '--stream',
      '--',
      'sh',
      '-c',
      'seq 1 10000; echo err >&2; exit 5',
    ]);
    expect(r.code).toBe(5);
    expect(r.stdout.trimEnd().split('\n')).toEqual(Array.from({ length: 10_000 }, (_, i) => String(i + 1)));
    expect(r.stderr).toBe('err\n');
    const lines = await ok(['--json', 'sandbox', 'exec', id, '--stream', '--', 'echo', 'hi']);
    const events = lines.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(events.map((e) => e.type)).toEqual(['start', 'stdout', 'exit']);
    expect(events[1]).toMatchObject({ text: 'hi\n' });
  });

  it('exec --stream: Ctrl-C kills the command in the sandbox and exits 130', async () => {
    const r = await hourglass(['sandbox', 'exec', id, '--stream', '--', 'sh', '-c', 'echo started; exec sleep 600'], {
      interruptOn: 'started',
    });
    expect(r.code).toBe(130);
    const all = await json<{ items: { command: string[]; state: string }[] }>(['sandbox', 'execs', id]);
    expect(all.items.find((e) => e.command.includes('echo started; exec sleep 600'))?.state).toBe('killed');
  });

  it('exec --background prints the execId; execs, output --follow and kill work on it', async () => {
    const bg = await ok(['sandbox', 'exec', id, '--background', '--', 'sh', '-c', 'echo up; exec sleep 600']);
    const execId = bg.stdout.trim();
    expect(execId).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.@-]*$/);
    expect((await ok(['sandbox', 'execs', id, execId])).stdout).toMatch(/running +background/);
    await eventually(async () => (await ok(['sandbox', 'output', id, execId])).stdout === 'up\n');
    // The kill comes once the follower has printed the first line: it is following by then.
    let followed1st!: () => void;
    const firstLine = new Promise<void>((r) => (followed1st = r));
    const following = hourglass(['sandbox', 'output', id, execId, '--follow'], {
      onStdout: (all) => all.includes('up\n') && followed1st(),
    });
    await firstLine;
    expect((await ok(['sandbox', 'kill', id, execId])).stdout).toMatch(/killed/);
    const followed = await following;
    expect(followed.stdout).toBe('up\n');
    expect(followed.code).not.toBe(0); // killed: a signal's exit code, or an error event
    const all = await json<{ items: { execId: string; state: string }[] }>(['sandbox', 'execs', id]);
    expect(all.items.find((e) => e.execId === execId)?.state).toBe('killed');
  });

  it('cp uploads and downloads files, through stdin and stdout too; ls, mkdir, rm', async () => {
    const local = path.join(dir, 'a.bin');
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(local, bytes, { mode: 0o640 });
    await ok(['sandbox', 'mkdir', id, 'in/deep', '--parents']);
    const up = await json<{ path: string; size: number; sha256: string }>(['sandbox', 'cp', local, `${id}:in/deep/`]);
    expect(up).toMatchObject({ path: '/work/in/deep/a.bin', size: bytes.length, sha256: sha(bytes) });

    await ok(['sandbox', 'cp', `${id}:/work/in/deep/a.bin`, path.join(dir, 'back.bin')]);
    expect(sha(readFileSync(path.join(dir, 'back.bin')))).toBe(sha(bytes));
    const toStdout = await ok(['sandbox', 'cp', `${id}:in/deep/a.bin`, '-']);
    expect(sha(toStdout.raw)).toBe(sha(bytes));

    await ok(['sandbox', 'cp', '-', `${id}:in/note.txt`], { input: 'from stdin\n' });
    expect((await ok(['sandbox', 'exec', id, '--', 'cat', 'in/note.txt'])).stdout).toMatch(/^from stdin\n/);

    const ls = await ok(['sandbox', 'ls', id, 'in/deep']);
    expect(ls.stdout).toMatch(new RegExp(`^-0640 +${bytes.length}  \\S+  a\\.bin\\n1 entry in /work/in/deep`));
    const listing = await json<{ entries: { name: string; type: string }[] }>(['sandbox', 'ls', id, 'in']);
    expect(listing.entries.map((e) => [e.name, e.type]).sort()).toEqual([
      ['deep', 'directory'],
      ['note.txt', 'file'],
    ]);

    // A directory: its tar as a file, or unpacked.
    await ok(['sandbox', 'cp', `${id}:in`, dir]);
    expect(statSync(path.join(dir, 'in.tar')).size).toBeGreaterThan(bytes.length);
    const unpacked = path.join(dir, 'unpacked');
    await ok(['sandbox', 'cp', '--extract', `${id}:in`, unpacked]);
    const found = readdirSync(unpacked, { recursive: true }).map(String).sort();
    expect(found.some((f) => f.endsWith('note.txt'))).toBe(true);
    const copy = found.find((f) => f.endsWith('a.bin'));
    expect(sha(readFileSync(path.join(unpacked, copy!)))).toBe(sha(bytes));

    expect((await ok(['sandbox', 'rm', id, 'in', '-r'])).stdout).toMatch(/^(\/work\/)?in: removed\n$/);
    expect((await ok(['sandbox', 'rm', id, 'in', '-r'])).stdout).toMatch(/^(\/work\/)?in: did not exist\n$/);
  });

  it('cp tells sandbox operands from local ones by the API id pattern', () => {
    expect(SANDBOX_ID_PATTERN.source).toBe(ID_PATTERN.source);
    expect(parseOperand('sbx-1:/work/a.txt')).toEqual({ sandbox: 'sbx-1', path: '/work/a.txt' });
    expect(parseOperand('sbx-1:')).toEqual({ sandbox: 'sbx-1', path: '.' });
    for (const local of ['./sbx-1:a', '/tmp/x:y', 'a.txt', '-', 'bad id:x']) {
      expect(parseOperand(local)).toEqual({ local });
    }
  });

  it('cp refuses paths out of the sandbox and two local operands', async () => {
    writeFileSync(path.join(dir, 'x.txt'), 'x');
    const out = await hourglass(['sandbox', 'cp', path.join(dir, 'x.txt'), `${id}:../x.txt`]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^error: invalid_argument: /);
    const both = await hourglass(['sandbox', 'cp', 'x.txt', 'y.txt']);
    expect(both.stderr).toMatch(/name one side as <sandbox-id>:<path>/);
  });
});
