// A whole Hourglass stack as `npm start` runs it — `node --import tsx cli/main.ts dev` with the
// embedded Temporal and PostgreSQL — on free ports and a fresh state dir, in a process group of
// its own; stopped with SIGTERM like Ctrl-C, and its state dir removed. The bench's environment
// passes through (HOURGLASS_* settings vary the run); BENCH_START_COMMAND replaces the command.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { createProcessHypervisor } from '../../hypervisors/process/driver';
import { freePort } from '../../worker/free-port';
import { ApiClient } from './api';
import { binaryVersion, REPO } from './environment';
import { log } from './output';
import { classify, leftovers } from './processes';
import { openRegistry, serverVersion } from './registry';
import { driverSettings } from '../../config/drivers';

export interface StackOptions {
  /** Names the state dir and log file. */
  name: string;
  /** Live sandboxes the bench holds at once: the per-owner quota is raised to fit them. */
  sandboxes?: number;
  /** Which token the bench's sandbox calls use (`user` counts against the quota like a tenant). */
  role?: 'user' | 'admin';
}

const DEFAULT_START = 'node --import tsx cli/main.ts dev';

export class Stack {
  /** Calls as the bench's owner (user `bench`, or the admin when role is admin). */
  readonly api: ApiClient;
  /** Calls only an admin may make (prune). */
  readonly admin: ApiClient;
  /** The stack's own clean-up calls (the bench's clients are closed by then). */
  private readonly ops: ApiClient;
  registry!: pg.Pool;
  private tail = '';
  private exited?: { code: number | null; signal: string | null };
  private stopped = false;

  private constructor(
    readonly stateDir: string,
    readonly ports: { api: number; temporal: number; ui: number; postgres: number },
    readonly leader: ChildProcess,
    readonly logFile: string,
    tokens: { user: string; admin: string },
    role: 'user' | 'admin',
  ) {
    const base = `http://127.0.0.1:${ports.api}`;
    this.admin = new ApiClient(base, tokens.admin);
    this.api = role === 'admin' ? this.admin : new ApiClient(base, tokens.user);
    this.ops = new ApiClient(base, tokens.admin);
  }

  /** Spawns the service; `ready()` waits until it answers. */
  static async launch(opts: StackOptions): Promise<Stack> {
    // Short: PostgreSQL's socket path must stay under 107 bytes.
    const stateDir = mkdtempSync(path.join(os.tmpdir(), `hgb-${opts.name}-`));
    const ports = {
      api: await freePort(),
      temporal: await freePort(),
      ui: await freePort(),
      postgres: await freePort(),
    };
    const tokens = { user: randomBytes(16).toString('hex'), admin: randomBytes(16).toString('hex') };
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Its own embedded services, its own tokens; nothing of a shell's service or test setup.
    for (const name of [
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'NODE_OPTIONS',
      'HOST',
      'HOURGLASS_API_TOKEN',
      'HOURGLASS_API_TOKENS_FILE',
    ]) {
      delete env[name];
    }
    const quota = Math.max(Number(process.env.HOURGLASS_MAX_SANDBOXES_PER_OWNER || 100), (opts.sandboxes ?? 0) + 100);
    Object.assign(env, {
      HOURGLASS_STATE_DIR: stateDir,
      PORT: String(ports.api),
      TEMPORAL_PORT: String(ports.temporal),
      TEMPORAL_UI_PORT: String(ports.ui),
      HOURGLASS_EMBEDDED_PG_PORT: String(ports.postgres),
      HOURGLASS_API_TOKENS: `bench:user:${tokens.user},ops:admin:${tokens.admin}`,
      HOURGLASS_MAX_SANDBOXES_PER_OWNER: String(quota),
    });
    const command = process.env.BENCH_START_COMMAND || DEFAULT_START;
    const logFile = path.join(os.tmpdir(), `hgb-${opts.name}-${path.basename(stateDir).split('-').at(-1)}.log`);
    // setpriv: should the bench be SIGKILLed, the service still gets its SIGTERM.
    const leader = spawn('setpriv', ['--pdeathsig=SIGTERM', '--', 'bash', '-c', `exec ${command}`], {
      cwd: REPO,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stack = new Stack(stateDir, ports, leader, logFile, tokens, opts.role ?? 'user');
    const file = createWriteStream(logFile);
    const keep = (chunk: Buffer) => {
      file.write(chunk);
      stack.tail = (stack.tail + chunk.toString()).slice(-20_000);
    };
    leader.stdout!.on('data', keep);
    leader.stderr!.on('data', keep);
    leader.once('exit', (code, signal) => {
      stack.exited = { code, signal };
      file.end();
    });
    log(
      `starting the stack (${command}) on API :${ports.api}, Temporal :${ports.temporal}, state ${stateDir}, ` +
        `log ${logFile}`,
    );
    return stack;
  }

  async ready(): Promise<void> {
    await this.waitHealthy();
    this.registry = openRegistry(this.stateDir, this.ports.postgres);
  }

  get temporalAddress(): string {
    return `127.0.0.1:${this.ports.temporal}`;
  }

  /** The last lines the service printed. */
  output(): string {
    return this.tail;
  }

  private async waitHealthy(timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const started = Date.now();
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(
          `the service exited (${JSON.stringify(this.exited)}) before it was healthy:\n${this.tail.slice(-3000)}`,
        );
      }
      try {
        const res = await fetch(`http://127.0.0.1:${this.ports.api}/healthz`, { signal: AbortSignal.timeout(5_000) });
        if (res.status === 200) {
          log(`stack healthy after ${((Date.now() - started) / 1000).toFixed(1)} s`);
          return;
        }
      } catch {
        /* not listening yet */
      }
      await sleep(250);
    }
    throw new Error(`the service was not healthy within ${timeoutMs} ms:\n${this.tail.slice(-3000)}`);
  }

  /** Versions of what the stack runs: the Temporal binary it started and the PostgreSQL server. */
  async versions(): Promise<{ temporal: string; postgres: string }> {
    const temporal = classify(this.stateDir, this.leader.pid!)
      .get('temporal')!
      .find((p) => p.argv.includes('start-dev'));
    let exe: string | null = null;
    try {
      exe = temporal ? readlinkSync(`/proc/${temporal.pid}/exe`) : null;
    } catch {
      /* gone */
    }
    const postgres = await serverVersion(this.registry).catch((err: Error) => `unknown (${err.message})`);
    return { temporal: exe ? binaryVersion(exe) : 'unknown (no embedded Temporal found)', postgres };
  }

  /**
   * Destroys (force) whatever the bench left alive, stops the service like Ctrl-C would, kills
   * anything of it still running, removes the state dir. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const pid = this.leader.pid!;
    this.api.closed = this.admin.closed = true;
    if (!this.exited) {
      await this.destroyLeftovers().catch((err: Error) => log(`could not destroy leftover sandboxes: ${err.message}`));
    }
    await this.registry?.end().catch(() => {});
    if (!this.exited) {
      log('stopping the stack (SIGTERM to its process group)');
      signalGroup(pid, 'SIGTERM');
      const deadline = Date.now() + 90_000;
      while (!this.exited && Date.now() < deadline) await sleep(100);
      if (!this.exited) {
        log('the service did not stop within 90 s: SIGKILL');
        signalGroup(pid, 'SIGKILL');
      }
    }
    // The embedded services die with the service; sandboxes would not (by design): any the API
    // could not destroy (made while it was stopping) are destroyed by the driver itself.
    const service = () => leftovers(this.stateDir, pid).filter((p) => p.kind !== 'sandboxes');
    for (let i = 0; i < 100 && service().length; i++) await sleep(200);
    if (leftovers(this.stateDir, pid).some((p) => p.kind === 'sandboxes')) {
      await this.destroyWithDriver().catch((err: Error) =>
        log(`the process driver could not clean up: ${err.message}`),
      );
    }
    const left = leftovers(this.stateDir, pid);
    if (left.length) {
      log(
        `killing ${left.length} processes of the stack still running: ${left
          .slice(0, 5)
          .map((p) => `${p.pid} ${p.argv[0]}`)
          .join(', ')}`,
      );
      for (const p of left) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(500);
    }
    try {
      rmSync(this.stateDir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      log(`could not remove ${this.stateDir}: ${(err as Error).message}`);
    }
  }

  /** The process driver on the stopped stack's state dir: removes processes, cgroups, mounts. */
  private async destroyWithDriver(): Promise<void> {
    const driver = createProcessHypervisor(driverSettings('process', process.env), this.stateDir);
    const vms = await driver.list();
    log(`destroying ${vms.length} sandboxes left after the stack stopped, with the process driver`);
    for (const vm of vms) {
      await driver.destroy(vm.id).catch((err: Error) => log(`could not destroy ${vm.id}: ${err.message}`));
    }
    await driver.close?.();
  }

  /** A run that went well needs no log. */
  removeLog(): void {
    rmSync(this.logFile, { force: true });
  }

  /** Force-destroys every sandbox the registry still has open, 1,000 per call. */
  private async destroyLeftovers(): Promise<void> {
    const { rows } = await this.registry.query<{ id: string }>(`SELECT id FROM sandboxes WHERE state <> 'DESTROYED'`);
    if (!rows.length) return;
    log(`force-destroying ${rows.length} sandboxes still open before stopping`);
    for (let i = 0; i < rows.length; i += 1000) {
      await this.ops.post('/v1/sandboxes/destroy', {
        ids: rows.slice(i, i + 1000).map((r) => r.id),
        force: true,
        reason: 'bench cleanup',
      });
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
