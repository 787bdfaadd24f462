// Keeps one embedded service running: when it dies, it is started again on the same data with
// exponential backoff, and its state is known at once (health answers 503 without waiting for a
// connection to time out).
import { describeExit, type ChildExit, type ServiceProcess } from './service-process';
import type { Logger } from '../log/logger';

export interface SupervisorState {
  name: string;
  up: boolean;
  status: 'starting' | 'running' | 'restarting' | 'stopped';
  restarts: number;
  /** When the service went down (ISO), while it is down. */
  downSince?: string;
  /** Why it last went down or last failed to start. */
  lastError?: string;
}

export interface BackoffOptions {
  firstDelayMs: number;
  maxDelayMs: number;
  /** A service that ran this long before dying starts again after the first delay. */
  resetAfterMs: number;
}

// At most 10 s: what stopped a restart (a port taken, a full disk) may be gone at any moment.
const DEFAULT_BACKOFF: BackoffOptions = { firstDelayMs: 500, maxDelayMs: 10_000, resetAfterMs: 60_000 };

export class Supervisor {
  private current?: ServiceProcess;
  private startedAt = 0;
  private status: SupervisorState['status'] = 'starting';
  private restarts = 0;
  private failuresInARow = 0;
  private downSince?: number;
  private lastError?: string;
  private retryTimer?: NodeJS.Timeout;
  private restarting?: Promise<void>;
  private stopping = false;

  constructor(
    readonly name: string,
    /** Starts the service and resolves once it is ready. */
    private readonly launch: () => Promise<ServiceProcess>,
    /** Stops a running instance in order. */
    private readonly shutdown: (p: ServiceProcess) => Promise<void>,
    private readonly logger: Logger,
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
  ) {}

  /** The first start: failures are thrown, not retried (a misconfiguration should say so at once). */
  async start(): Promise<void> {
    this.adopt(await this.launch());
  }

  get process(): ServiceProcess | undefined {
    return this.current;
  }

  state(): SupervisorState {
    // Down from the moment it exits, a little before its exit is reported (ServiceProcess.exited).
    const justExited = this.status === 'running' ? this.current?.exitStatus() : undefined;
    if (justExited) {
      return {
        name: this.name,
        up: false,
        status: 'restarting',
        restarts: this.restarts,
        lastError: `pid ${this.current!.pid} ${describeExit(justExited)}`,
      };
    }
    return {
      name: this.name,
      up: this.status === 'running',
      status: this.status,
      restarts: this.restarts,
      ...(this.downSince !== undefined ? { downSince: new Date(this.downSince).toISOString() } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    await this.restarting;
    this.status = 'stopped';
    const p = this.current;
    this.current = undefined;
    if (p && !p.exitStatus()) {
      const t0 = Date.now();
      await this.shutdown(p);
      this.logger.info(`embedded ${this.name} stopped (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }

  private adopt(p: ServiceProcess): void {
    this.current = p;
    this.startedAt = Date.now();
    this.status = 'running';
    this.downSince = undefined;
    void p.exited.then((exit) => this.onExit(p, exit));
  }

  private onExit(p: ServiceProcess, exit: ChildExit): void {
    if (this.stopping || this.current !== p) return;
    this.current = undefined;
    this.status = 'restarting';
    this.downSince = Date.now();
    this.lastError = `pid ${p.pid} ${describeExit(exit)}`;
    if (Date.now() - this.startedAt >= this.backoff.resetAfterMs) this.failuresInARow = 0;
    const lastLines = p.recentOutput().slice(-5);
    this.logger.error(
      `embedded ${this.name} (pid ${p.pid}) ${describeExit(exit)} unexpectedly` +
        (lastLines.length ? `; its last output:\n  ${lastLines.join('\n  ')}` : ''),
    );
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = Math.min(this.backoff.maxDelayMs, this.backoff.firstDelayMs * 2 ** this.failuresInARow);
    this.failuresInARow += 1;
    const seconds = (delay / 1000).toFixed(1);
    this.logger.warn(`restarting embedded ${this.name} in ${seconds} s (attempt ${this.failuresInARow})`);
    this.retryTimer = setTimeout(() => {
      this.restarting = this.restart().finally(() => (this.restarting = undefined));
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    let p: ServiceProcess;
    try {
      p = await this.launch();
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      this.logger.warn(`embedded ${this.name} did not start again: ${this.lastError}`);
      if (!this.stopping) this.scheduleRestart();
      return;
    }
    if (this.stopping) {
      await this.shutdown(p);
      return;
    }
    const downFor = ((Date.now() - (this.downSince ?? Date.now())) / 1000).toFixed(1);
    this.restarts += 1;
    this.adopt(p);
    this.logger.info(`embedded ${this.name} is back (pid ${p.pid}) after ${downFor} s down`);
  }
}
