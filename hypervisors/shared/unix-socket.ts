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
