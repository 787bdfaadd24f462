// Minimal QMP client (QEMU's control socket): handshake, query-status, stop, cont, quit.
import type { Socket } from 'node:net';
import { connectUnixSocket, readJsonLines, Wakeup } from '../common/unix-socket';

export interface QmpOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpError';
  }
}

type QmpMessage = {
  QMP?: unknown;
  event?: string;
  return?: unknown;
  error?: { class: string; desc: string };
  id?: number;
};

const DEFAULT_TIMEOUT_MS = 5_000;

export class QmpClient {
  private readonly inbox: QmpMessage[] = [];
  private readonly arrival = new Wakeup();
  private closedWith: Error | null = null;
  private nextId = 1;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    socket.setEncoding('utf8');
    readJsonLines<QmpMessage>(socket, this.arrival, {
      // Nobody here waits for events; a line that is not QMP is ignored.
      message: (m) => {
        if (m.event === undefined) this.inbox.push(m);
      },
      closed: (err) => {
        this.closedWith ??= new QmpError(`QMP connection ${path} closed${err ? `: ${err.message}` : ''}`);
      },
    });
  }

  /** Connects and completes the capabilities handshake (QMP refuses commands before it). */
  static async connect(path: string, opts: QmpOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = await connectUnixSocket(
      path,
      timeoutMs,
      (detail) => new QmpError(`QMP connect to ${path}${detail}`),
    );
    const client = new QmpClient(socket, path);
    try {
      await client.next((m) => m.QMP !== undefined, timeoutMs, opts.signal);
      await client.execute('qmp_capabilities', undefined, opts);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: QmpOptions = {}): Promise<T> {
    const id = this.nextId++;
    this.socket.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    // Events (STOP, RESUME, SHUTDOWN…) arrive interleaved with replies: match on our id.
    const reply = await this.next((m) => m.id === id, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, opts.signal, command);
    if (reply.error) throw new QmpError(`QMP ${command}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return as T;
  }

  async queryStatus(opts?: QmpOptions): Promise<{ status: string; running: boolean }> {
    return this.execute('query-status', undefined, opts);
  }

  /** Pauses the vCPUs; guest memory and devices stay as they are. */
  async stop(opts?: QmpOptions): Promise<void> {
    await this.execute('stop', undefined, opts);
  }

  async cont(opts?: QmpOptions): Promise<void> {
    await this.execute('cont', undefined, opts);
  }

  /** Asks QEMU to exit. The reply may be lost when QEMU closes the socket first: that is success too. */
  async quit(opts?: QmpOptions): Promise<void> {
    try {
      await this.execute('quit', undefined, opts);
    } catch (err) {
      if (!(err instanceof QmpError && this.closedWith)) throw err;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private async next(
    match: (m: QmpMessage) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
    what = 'greeting',
  ): Promise<QmpMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (this.closedWith) throw this.closedWith;
      signal?.throwIfAborted();
      const left = deadline - Date.now();
      if (left <= 0) throw new QmpError(`QMP ${what} on ${this.path}: no reply within ${timeoutMs} ms`);
      await this.arrival.wait(left, signal);
    }
  }
}
