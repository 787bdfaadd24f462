// One LISTEN connection per process for `sandbox_events` (migration 005 NOTIFYs each event's id at
// commit). Subscribers are told "there are events up to id X" and read them from the feed after
// the last id they handled, so a notification lost while the connection was down loses nothing:
// after every (re)connect the listener announces the newest id, and everyone re-reads.
import pg from 'pg';
import { compareIds } from './event-feed';

export type EventWake = (upToId: string) => void;

export interface EventListenerOptions {
  /** A dedicated connection (a LISTEN holds it for good; a pool's client would be lost to it). */
  connection: pg.ClientConfig;
  /** Close the connection this long after the last subscriber leaves (undefined: keep it). */
  idleCloseMs?: number;
  /** Reconnect delays: doubling from min to max. */
  backoff?: { minMs: number; maxMs: number };
  log?: (msg: string) => void;
}

const CHANNEL = 'sandbox_events';

/** Pool settings a single pg.Client does not take (passing them along would only confuse a reader). */
const POOL_ONLY = [
  'max',
  'min',
  'idleTimeoutMillis',
  'maxUses',
  'maxLifetimeSeconds',
  'allowExitOnIdle',
  'log',
  'Client',
];

/** The connection settings of a pool, for the listener's own dedicated client. */
export function listenerConnectionConfig(pool: pg.Pool): pg.ClientConfig {
  const config: Record<string, unknown> = { ...pool.options };
  for (const key of POOL_ONLY) delete config[key];
  return config as pg.ClientConfig;
}

export class EventListener {
  private readonly subscribers = new Set<EventWake>();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private closed = false;
  private listening = false;
  private newest = '0';
  private pid: number | undefined;

  constructor(private readonly opts: EventListenerOptions) {
    this.delayMs = opts.backoff?.minMs ?? 250;
  }

  /**
   * Registers a wake-up and starts listening if not yet. Resolves once LISTEN is active (or the
   * first attempt failed: the listener keeps retrying, and wakes everyone once it is back).
   */
  async subscribe(fn: EventWake): Promise<() => void> {
    if (this.closed) throw new Error('event listener is closed');
    this.subscribers.add(fn);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.client && !this.retryTimer) this.connecting ??= this.connect();
    await this.connecting;
    return () => this.unsubscribe(fn);
  }

  /** Whether LISTEN is active right now (while false, wakes come after the reconnect). */
  get isListening(): boolean {
    return this.listening;
  }

  /** The PostgreSQL backend pid of the LISTEN connection (undefined while there is none). */
  get backendPid(): number | undefined {
    return this.listening ? this.pid : undefined;
  }

  /** The newest id announced so far ('0' before any). */
  get newestId(): string {
    return this.newest;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    await this.connecting;
    await this.disconnect();
  }

  private unsubscribe(fn: EventWake): void {
    this.subscribers.delete(fn);
    if (this.subscribers.size > 0 || this.opts.idleCloseMs === undefined || this.closed) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.subscribers.size > 0) return;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      void this.disconnect();
    }, this.opts.idleCloseMs);
    this.idleTimer.unref();
  }

  private async connect(): Promise<void> {
    // Named, so an operator (or a test) can find it in pg_stat_activity.
    const client = new pg.Client({ ...this.opts.connection, application_name: 'hourglass-event-listener' });
    // Registered before connecting: an 'error' with no listener would crash the process.
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel === CHANNEL && n.payload) this.announce(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (this.closed) {
        await client.end();
        return;
      }
      this.client = client;
      this.listening = true;
      this.delayMs = this.opts.backoff?.minMs ?? 250;
      // Anything committed before LISTEN took effect sent no notification to us: announce the
      // newest id so every subscriber re-reads past what it has.
      const { rows } = await client.query<{ id: string; pid: number }>(
        'SELECT COALESCE(max(id), 0)::text AS id, pg_backend_pid() AS pid FROM sandbox_events',
      );
      this.pid = rows[0]!.pid;
      this.announce(rows[0]!.id, true);
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      this.connecting = undefined;
    }
  }

  private announce(id: string, always = false): void {
    if (compareIds(id, this.newest) > 0) this.newest = id;
    else if (!always) return;
    for (const fn of [...this.subscribers]) fn(this.newest);
  }

  /** The connection failed or ended: drop it, and reconnect with backoff while anyone listens. */
  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== undefined && this.client !== client) return;
    if (this.client === client) this.client = undefined;
    this.listening = false;
    client.removeAllListeners('notification');
    client.end().catch(() => {});
    if (this.closed || this.retryTimer || this.subscribers.size === 0) return;
    this.opts.log?.(`event listener connection lost (${err?.message ?? 'ended'}); retrying in ${this.delayMs} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed && !this.client && this.subscribers.size > 0) this.connecting ??= this.connect();
    }, this.delayMs);
    this.retryTimer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.opts.backoff?.maxMs ?? 10_000);
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.listening = false;
    if (!client) return;
    client.removeAllListeners('end');
    client.removeAllListeners('notification');
    await client.end().catch(() => {});
  }
}
