// Shared by the QMP and guest-agent clients: both speak line-delimited JSON over a unix socket.
import { connect, type Socket } from 'node:net';

/** Connects or rejects with fail(' timed out') / fail(': <reason>'), so each client keeps its own wording. */
export function connectUnixSocket(path: string, timeoutMs: number, fail: (detail: string) => Error): Promise<Socket> {
  return new Promise<Socket>((resolveSocket, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => (s.destroy(), reject(fail(' timed out'))), timeoutMs);
    s.once('connect', () => (clearTimeout(timer), resolveSocket(s)));
    s.once('error', (err) => (clearTimeout(timer), reject(fail(`: ${err.message}`))));
  });
}

/** Lets a reader wait for the socket's next event (data, close) without polling. */
export class Wakeup {
  private wake: (() => void) | null = null;

  /** Ends the current wait, if there is one. */
  notify(): void {
    this.wake?.();
  }

  /** Resolves on notify(), after ms, or when the signal aborts, whichever comes first. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((done) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        this.wake = null;
        done();
      };
      const timer = setTimeout(finish, ms);
      signal?.addEventListener('abort', finish, { once: true });
      this.wake = finish;
    });
  }
}

/**
 * Hands each JSON line the socket delivers to `message` (blank and non-JSON lines are skipped: a
 * socket callback must not throw), `closed` the end of the connection, and wakes the reader after
 * each. `normalize` may rewrite a chunk first (the guest agent's 0xFF sync marker).
 */
export function readJsonLines<T>(
  socket: Socket,
  wakeup: Wakeup,
  on: { message: (m: T) => void; closed: (err?: Error) => void; normalize?: (chunk: string) => string },
): void {
  let buffer = '';
  socket.on('data', (chunk: string) => {
    buffer += on.normalize ? on.normalize(chunk) : chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      let message: T;
      try {
        message = JSON.parse(line) as T;
      } catch {
        continue;
      }
      on.message(message);
    }
    wakeup.notify();
  });
  const gone = (err?: Error) => {
    on.closed(err);
    wakeup.notify();
  };
  socket.on('error', gone);
  socket.on('close', () => gone());
}
