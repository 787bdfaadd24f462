// Tiny client for the QEMU guest agent (qemu-ga) over the host side of its virtio-serial port.
//
// The port carries one byte stream with no sessions: replies meant for an earlier client (one
// that timed out or died) can still be in flight. So every connection starts with
// guest-sync-delimited (a random id, answered after a 0xFF byte) and only then trusts the order.
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectUnixSocket, Wakeup } from '../shared/unix-socket';
import { outputFields, type OutputFields } from '../guest/output';

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

/** guest-exec-status reply. Output is only there once the process has exited. */
export interface GuestExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

export interface GuestRunOptions {
  /** Full environment of the process ("K=V"); qemu-ga replaces, not extends, its own. */
  env?: string[];
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface GuestRunResult extends OutputFields {
  exitCode: number;
  timedOut: boolean;
}

type QgaMessage = { return?: unknown; error?: { class: string; desc: string } };

const DEFAULT_TIMEOUT_MS = 10_000;
const TIMEOUT_EXIT_CODE = 124; // what coreutils' timeout(1) returns
const POLL_MAX_MS = 50;
// Kill the process and everything under it. Each is frozen (SIGSTOP) before its children are
// looked up, so it can neither fork nor go on to its next command; killed only after its
// children, whom it would otherwise hand to init where they could no longer be found. The agent
// has no exec-kill command in QEMU 7.2, and the guest's busybox has no pgrep, hence /proc.
const KILL_TREE =
  'k() { kill -STOP "$1"; for s in /proc/[0-9]*/stat; do read -r p c st pp rest < "$s" 2>/dev/null && [ "$pp" = "$1" ] && k "$p"; done; kill -9 "$1"; }; k "$0"';

export class QgaClient {
  private buffer = '';
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
    socket.on('data', (chunk: string) => {
      // The 0xFF before a sync reply only marks where fresh output starts; ids do the matching.
      this.buffer += chunk.replaceAll('\xff', '\n');
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (!line) continue;
        try {
          this.inbox.push(JSON.parse(line) as QgaMessage);
        } catch {
          // a half line from before our sync: ignore
        }
      }
      this.arrival.notify();
    });
    const onGone = (err?: Error) => {
      this.closedWith ??= new QgaError(`guest agent connection ${path} closed${err ? `: ${err.message}` : ''}`);
      this.arrival.notify();
    };
    socket.on('error', onGone);
    socket.on('close', () => onGone());
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
      this.socket.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } }) + '\n')]));
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

  /** Starts a process (argv[0] is looked up in the agent's PATH); returns its guest pid. */
  async exec(argv: string[], env: string[] | undefined, opts?: QgaOptions): Promise<number> {
    const [path, ...arg] = argv;
    if (!path) throw new QgaError('guest-exec needs a command');
    const reply = await this.command<{ pid: number }>(
      'guest-exec',
      { path, arg, 'capture-output': true, ...(env ? { env } : {}) },
      opts,
    );
    return reply.pid;
  }

  async execStatus(pid: number, opts?: QgaOptions): Promise<GuestExecStatus> {
    return this.command<GuestExecStatus>('guest-exec-status', { pid }, opts);
  }

  /** Runs a command to completion; on timeout kills it (and its children) and returns exit code 124. */
  async run(argv: string[], opts: GuestRunOptions): Promise<GuestRunResult> {
    // The signal is checked between polls, not passed to requests: an aborted request would
    // close the connection we still need to kill the process.
    const pid = await this.exec(argv, opts.env);
    const deadline = Date.now() + opts.timeoutMs;
    let pollMs = 1;
    for (;;) {
      const status = await this.execStatus(pid);
      if (status.exited) return toResult(status, false);
      if (opts.signal?.aborted) {
        await this.killQuietly(pid);
        opts.signal.throwIfAborted();
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
      pollMs = Math.min(pollMs * 2, POLL_MAX_MS);
    }
    await this.killQuietly(pid);
    // Collect what it printed before the kill; this also frees the agent's record of the pid.
    for (let i = 0; i < 40; i++) {
      const status = await this.execStatus(pid).catch(() => null);
      if (!status) break;
      if (status.exited) return { ...toResult(status, true), exitCode: TIMEOUT_EXIT_CODE };
      await sleep(25);
    }
    return { exitCode: TIMEOUT_EXIT_CODE, stdout: '', stderr: '', timedOut: true };
  }

  close(): void {
    this.socket.destroy();
  }

  private async killQuietly(pid: number): Promise<void> {
    await this.exec(['sh', '-c', KILL_TREE, String(pid)], undefined, { timeoutMs: 5_000 }).catch(() => undefined);
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

function toResult(status: GuestExecStatus, timedOut: boolean): GuestRunResult {
  return {
    // Killed by a signal: report it the way shells do.
    exitCode: status.exitcode ?? (status.signal !== undefined ? 128 + status.signal : -1),
    ...outputFields(Buffer.from(status['out-data'] ?? '', 'base64'), Buffer.from(status['err-data'] ?? '', 'base64')),
    timedOut,
  };
}
