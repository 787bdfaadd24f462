// Tiny client for the QEMU guest agent (qemu-ga) over the host side of its virtio-serial port.
//
// The port carries one byte stream with no sessions: replies meant for an earlier client (one
// that timed out or died) can still be in flight. So every connection starts with
// guest-sync-delimited (a random id, answered after a 0xFF byte) and only then trusts the order.
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { connectUnixSocket, readJsonLines, Wakeup } from '../common/unix-socket';
import type { GuestAgent } from '../guest/exec';
import { decodeExecStatus, guestExecArguments, type QgaExecStatus } from '../guest/qga-exec';
import type { QgaFiles } from '../guest/qga-files';
import type { StreamingGuestAgent } from '../guest/stream-exec';

export interface QgaOptions {
  /** Per request (connect, sync, one command). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class QgaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QgaError';
  }
}

type QgaMessage = { return?: unknown; error?: { class: string; desc: string } };

const DEFAULT_TIMEOUT_MS = 10_000;

export class QgaClient {
  private readonly inbox: QgaMessage[] = [];
  private readonly arrival = new Wakeup();
  private closedWith: Error | null = null;
  /** Requests go one at a time: the protocol has no ids, replies come in order. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    socket.setEncoding('latin1'); // 0xFF must survive as one char; JSON replies are ASCII
    readJsonLines<QgaMessage>(socket, this.arrival, {
      // The 0xFF before a sync reply only marks where fresh output starts; ids do the matching.
      normalize: (chunk) => chunk.replaceAll('\xff', '\n'),
      // A half line from before our sync is not JSON, and skipped.
      message: (m) => this.inbox.push(m),
      closed: (err) => {
        this.closedWith ??= new QgaError(`guest agent connection ${path} closed${err ? `: ${err.message}` : ''}`);
      },
    });
  }

  /** Opens the socket only; QEMU accepts it even before the guest agent runs. Call sync() next. */
  static async connect(path: string, opts: QgaOptions = {}): Promise<QgaClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = await connectUnixSocket(path, timeoutMs, (detail) => new QgaError(`connect to ${path}${detail}`));
    return new QgaClient(socket, path);
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /**
   * Discards whatever earlier clients left in the stream. The 0xFF we send first resets the
   * agent's JSON parser if a previous client died mid-request.
   */
  async sync(opts: QgaOptions = {}): Promise<void> {
    await this.serialized(async () => {
      const id = randomInt(1, 2 ** 31);
      this.socket.write(
        Buffer.concat([
          Buffer.from([0xff]),
          Buffer.from(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } }) + '\n'),
        ]),
      );
      await this.next((m) => m.return === id, opts, 'guest-sync-delimited');
      this.inbox.length = 0; // anything before our reply was stale
    });
  }

  async command<T = unknown>(execute: string, args?: Record<string, unknown>, opts: QgaOptions = {}): Promise<T> {
    return this.serialized(async () => {
      this.socket.write(JSON.stringify({ execute, ...(args ? { arguments: args } : {}) }) + '\n');
      const reply = await this.next((m) => m.return !== undefined || m.error !== undefined, opts, execute);
      if (reply.error) throw new QgaError(`${execute}: ${reply.error.class}: ${reply.error.desc}`);
      return reply.return as T;
    });
  }

  async ping(opts?: QgaOptions): Promise<void> {
    await this.command('guest-ping', undefined, opts);
  }

  close(): void {
    this.socket.destroy();
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn, fn);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async next(match: (m: QgaMessage) => boolean, opts: QgaOptions, what: string): Promise<QgaMessage> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const i = this.inbox.findIndex(match);
        if (i >= 0) return this.inbox.splice(0, i + 1)[i]!;
        if (this.closedWith) throw this.closedWith;
        opts.signal?.throwIfAborted();
        const left = deadline - Date.now();
        if (left <= 0) throw new QgaError(`${what} on ${this.path}: no reply within ${timeoutMs} ms`);
        await this.arrival.wait(left, opts.signal);
      }
    } catch (err) {
      // A reply that comes later would be taken for the next request's: this connection is done.
      this.close();
      throw err;
    }
  }
}

/** A connection as the exec contract's runner drives it (guest/exec.ts). */
export function qgaGuestAgent(qga: QgaClient): GuestAgent {
  return {
    exec: async (argv, env) => (await qga.command<{ pid: number }>('guest-exec', guestExecArguments(argv, env))).pid,
    status: async (pid) => decodeExecStatus(await qga.command<QgaExecStatus>('guest-exec-status', { pid })),
    pollMs: { first: 1, max: 50 },
  };
}

/** The same, plus what a streamed exec needs (guest/stream-exec.ts): stdin and file tails. */
export function qgaStreamingAgent(qga: QgaClient, files: QgaFiles): StreamingGuestAgent {
  const agent = qgaGuestAgent(qga);
  return {
    ...agent,
    start: async (argv, env, stdin) => {
      const args = { ...guestExecArguments(argv, env), ...(stdin ? { 'input-data': stdin.toString('base64') } : {}) };
      return (await qga.command<{ pid: number }>('guest-exec', args)).pid;
    },
    outputs: (out, err) => files.outputs(out, err),
    // A poll is five requests on the socket (status, then seek + read per stream), ~1 ms each.
    tailMs: { first: 5, max: 40 },
    readChunkBytes: files.chunkBytes,
  };
}

/** A QgaClient as guest/qga-files.ts sends commands. */
export const qgaCommand =
  (qga: QgaClient) =>
  (execute: string, args?: Record<string, unknown>): Promise<unknown> =>
    qga.command(execute, args);
