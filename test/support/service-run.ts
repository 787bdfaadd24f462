// The service as its users run it — `node --import tsx cli/main.ts dev` or `npm start` — as a
// child process with embedded Temporal and PostgreSQL in a state dir of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { looksLikePostgres } from '../../registry/postgres-server';
import { findProcesses, type ProcessInfo } from '../../hypervisors/common/process-table';
import { freePort } from '../../worker/free-port';

export const REPO = path.join(import.meta.dirname, '..', '..');
export const TOKEN = randomBytes(16).toString('hex');

export interface ServicePorts {
  api: number;
  temporal: number;
  /** Only names the PostgreSQL socket file. */
  postgres: number;
}

export interface ServiceRun {
  /** What was started: node itself, or npm. */
  leader: ChildProcess;
  output(): string;
  /** What it wrote on stdout alone (its log: JSON lines, as it is not a terminal). */
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePorts(): Promise<ServicePorts> {
  return { api: await freePort(), temporal: await freePort(), postgres: await freePort() };
}

export { freePort };

export function serviceEnv(stateDir: string, ports: ServicePorts): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOURGLASS_STATE_DIR: stateDir,
    PORT: String(ports.api),
    TEMPORAL_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: '0',
    HOURGLASS_EMBEDDED_PG_PORT: String(ports.postgres),
    HOURGLASS_API_TOKEN: TOKEN,
  };
  // Both embedded; and vitest's loader hooks must not leak into the child.
  // LOG_LEVEL too: the tests' own (warn) would hide the lines they look for.
  for (const name of [
    'DATABASE_URL',
    'TEMPORAL_ADDRESS',
    'NODE_OPTIONS',
    'HOST',
    'HOURGLASS_TASK_QUEUE',
    'LOG_LEVEL',
  ]) {
    delete env[name];
  }
  return env;
}

/**
 * `how: 'node'` runs `node --import tsx cli/main.ts dev` through `bash -c '… exec node …'`, so the
 * leader's pid is node's and `shellPrefix` (e.g. `exec 200>>file;`) shapes what it inherits.
 * (util-linux's setpriv execs too.)
 */
export function startService(env: NodeJS.ProcessEnv, how: 'node' | 'npm', shellPrefix = ''): ServiceRun {
  const command =
    how === 'node' ? ['bash', '-c', `${shellPrefix} exec node --import tsx cli/main.ts dev`] : ['npm', 'start'];
  // Should the test process die, the service it started shuts down too (npm passes SIGTERM on).
  const leader = spawn('setpriv', ['--pdeathsig=SIGTERM', '--', ...command], {
    cwd: REPO,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  leader.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    stdout += c.toString();
  });
  leader.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    leader.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { leader, output: () => out, stdout: () => stdout, exited };
}

export async function api<T = unknown>(
  ports: ServicePorts,
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${ports.api}${urlPath}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** /healthz's status, or 0 when nothing answers within 5 s. */
export async function healthStatus(ports: ServicePorts): Promise<{ status: number; body: unknown }> {
  try {
    const res = await fetch(`http://127.0.0.1:${ports.api}/healthz`, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.json() };
  } catch {
    return { status: 0, body: undefined };
  }
}

export async function waitHealthy(run: ServiceRun, ports: ServicePorts, timeoutMs = 150_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exit: { code: number | null } | undefined;
  void run.exited.then((e) => (exit = e));
  while (Date.now() < deadline) {
    if (exit) {
      throw new Error(`the service exited (code ${exit.code}) before it was healthy:\n${run.output().slice(-3000)}`);
    }
    if ((await healthStatus(ports)).status === 200) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the service was not healthy within ${timeoutMs} ms:\n${run.output().slice(-3000)}`);
}

/** The node process running cli/main.ts under `parentPid` (npm), or the parent itself if it is node. */
export async function serviceNodePid(parentPid: number): Promise<number> {
  const [child] = await findProcesses(
    (argv) => argv.includes('cli/main.ts'),
    (p) => p.ppid === parentPid,
  );
  return child?.pid ?? parentPid;
}

/** Every embedded PostgreSQL / Temporal process working on this state dir's data. */
export function embeddedProcesses(stateDir: string): Promise<ProcessInfo[]> {
  const real = realpathSync(stateDir);
  return findProcesses(
    (argv) => argv.includes('start-dev') || looksLikePostgres(argv),
    (p) =>
      (p.argv.includes('start-dev') && p.argv.some((a) => a.startsWith(real))) ||
      (p.cwd === path.join(real, 'postgres') && path.basename(p.exe ?? '') === 'postgres'),
  );
}

export async function temporalPid(stateDir: string): Promise<number> {
  const [temporal] = (await embeddedProcesses(stateDir)).filter((p) => p.argv.includes('start-dev'));
  if (!temporal) throw new Error(`no embedded Temporal runs on ${stateDir}`);
  return temporal.pid;
}

export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Local addresses (`127.0.0.1:7233`) of the TCP sockets a process listens on, from /proc/net. */
export function tcpListeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      /* closed meanwhile */
    }
  }
  const listeners: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== '0A' || !inodes.has(fields[9] ?? '')) continue; // 0A = LISTEN
      listeners.push(decodeAddress(fields[1]!));
    }
  }
  return listeners;
}

/** /proc/net/tcp writes addresses as hex words in host (little-endian) order, ports in big-endian hex. */
function decodeAddress(hex: string): string {
  const [ip, port] = hex.split(':') as [string, string];
  const p = parseInt(port, 16);
  if (ip.length === 8) return `${Buffer.from(ip, 'hex').reverse().join('.')}:${p}`;
  return `[${ip}]:${p}`; // IPv6, left raw: any is wrong for a loopback-only service
}
