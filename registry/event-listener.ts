// One LISTEN connection per process and channel. For `sandbox_events` (migration 005 NOTIFYs each
// event's id at commit) subscribers are told "there are events up to id X" and read them from the
// feed after the last id they handled, so a notification lost while the connection was down loses
// nothing: after every (re)connect the listener announces the newest id, and everyone re-reads.
// Any other channel (`exec_output`) passes each payload on as it came, and after every (re)connect
// wakes everyone with RECONNECTED: whatever was missed, its subscribers re-read.
import pg from 'pg';
import { compareIds } from './event-feed';

/** sandbox_events: the newest event id; another channel: the NOTIFY's payload (or RECONNECTED). */
export type EventWake = (upToIdOrPayload: string) => void;

export interface EventListenerOptions {
  /** A dedicated connection (a LISTEN holds it for good; a pool's client would be lost to it). */
  connection: pg.ClientConfig;
  /** Close the connection this long after the last subscriber leaves (undefined: keep it). */
  idleCloseMs?: number;
  /** Reconnect delays: doubling from min to max. */
  backoff?: { minMs: number; maxMs: number };
  log?: (msg: string) => void;
  /** The NOTIFY channel (default sandbox_events, whose payloads are event ids). */
  channel?: string;
}

const EVENTS_CHANNEL = 'sandbox_events';

/** The payload a non-event channel's subscribers get after a (re)connect: anything may have been missed. */
export const RECONNECTED = '';

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

/** A blackholed database must not hold a stream's first answer or a shutdown for minutes. */
const CONNECT_TIMEOUT_MS = 5000;
/** subscribe() and close() wait this long at most (a connect: its timeout plus LISTEN and one SELECT). */
const WAIT_MS = 2 * CONNECT_TIMEOUT_MS;

/** Resolves when `p` settles or after `ms`, whichever comes first (never rejects). */
function within(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(
      () => {},
      () => {},
    ),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]).finally(() => clearTimeout(timer));
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
  private readonly channel: string;

  constructor(private readonly opts: EventListenerOptions) {
    this.delayMs = opts.backoff?.minMs ?? 250;
    this.channel = opts.channel ?? EVENTS_CHANNEL;
    // Interpolated into LISTEN: only plain identifiers.
    if (!/^[a-z_][a-z0-9_]*$/.test(this.channel)) throw new Error(`not a channel name: ${this.channel}`);
  }

  /**
   * Registers a wake-up and starts listening if not yet. Resolves once LISTEN is active, or the
   * first attempt failed, or it took too long: the listener keeps retrying, and wakes everyone once
   * it is back (subscribers poll meanwhile).
   */
  async subscribe(fn: EventWake): Promise<() => void> {
    if (this.closed) throw new Error('event listener is closed');
    this.subscribers.add(fn);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.client && !this.retryTimer) this.connecting ??= this.connect();
    await within(this.connecting, WAIT_MS);
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

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    // A connect still under way ends its own client once it sees `closed` (or times out).
    await within(this.connecting, WAIT_MS);
    await this.disconnect();
  }

  private unsubscribe(fn: EventWake): void {
    this.subscribers.delete(fn);
    this.closeWhenIdle();
  }

  /** With nobody subscribed, drops the connection after idleCloseMs (unless someone comes back). */
  private closeWhenIdle(): void {
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
    const client = new pg.Client({
      ...this.opts.connection,
      connectionTimeoutMillis: this.opts.connection.connectionTimeoutMillis || CONNECT_TIMEOUT_MS,
      // LISTEN and the newest-id read: a connection that went silent after connecting fails too.
      query_timeout: CONNECT_TIMEOUT_MS,
      // A LISTEN connection is idle for long stretches: keepalives notice a peer that vanished.
      keepAlive: true,
      // Named, so an operator (or a test) can find it in pg_stat_activity.
      application_name: this.channel === EVENTS_CHANNEL ? 'hourglass-event-listener' : `hourglass-${this.channel}`,
    });
    // Registered before connecting: an 'error' with no listener would crash the process.
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (n.channel !== this.channel || !n.payload) return;
      if (this.channel === EVENTS_CHANNEL) this.announce(n.payload);
      else this.pass(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.closed) {
        client.removeAllListeners('end');
        await endQuickly(client);
        return;
      }
      this.client = client;
      this.listening = true;
      this.delayMs = this.opts.backoff?.minMs ?? 250;
      // Everyone may have left while we connected (the idle timer then found no connection to
      // close): start it again, or LISTEN would stay open with nobody to wake.
      this.closeWhenIdle();
      if (this.channel !== EVENTS_CHANNEL) {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        this.pid = rows[0]!.pid;
        this.pass(RECONNECTED);
        return;
      }
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

  private pass(payload: string): void {
    for (const fn of [...this.subscribers]) fn(payload);
  }

  /** The connection failed or ended: drop it, and reconnect with backoff while anyone listens. */
  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== undefined && this.client !== client) return;
    if (this.client === client) this.client = undefined;
    this.listening = false;
    client.removeAllListeners('notification');
    client.removeAllListeners('end'); // handled here, once
    void endQuickly(client);
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
    await endQuickly(client);
  }
}

/**
 * Ends a client politely, but a peer that does not answer (a blackholed database) gets its socket
 * destroyed after a while: client.end() alone would wait for the server's goodbye for minutes.
 */
function endQuickly(client: pg.Client): Promise<void> {
  const ended = client.end().catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      client.connection.stream.destroy();
      resolve();
    }, CONNECT_TIMEOUT_MS);
    timer.unref();
  });
  return Promise.race([ended, gaveUp]).finally(() => clearTimeout(timer));
}
