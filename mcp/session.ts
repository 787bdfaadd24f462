// The Hourglass session one MCP connection owns. Every sandbox the connection creates joins it, so
// ending it (on disconnect) destroys them all; should this process die without ending it, the
// missed heartbeats end it a timeout later and the same happens.
import type { Logger } from 'pino';
import type { HourglassClient } from '../client';
import { HourglassApiError } from '../client';

export type SessionClient = Pick<HourglassClient, 'createSession' | 'heartbeatSession' | 'endSession'>;

export interface McpSessionOptions {
  /** The session ends this long after the last heartbeat; heartbeats go out three times as often. */
  heartbeatTimeoutSeconds: number;
  log: Logger;
}

/** Ending must finish before an MCP client's SIGKILL (the SDK's stdio client sends one 4 s after closing stdin). */
const END_TIMEOUT_MS = 3000;

export class McpSession {
  private opening?: Promise<string>;
  /** The id of the open session, once it is open. */
  private current?: string;
  private timer?: NodeJS.Timeout;
  private ended = false;

  constructor(
    private readonly client: SessionClient,
    private readonly opts: McpSessionOptions,
  ) {}

  /** The open session's id; opens one first if there is none (at start, or after one ended under us). */
  id(): Promise<string> {
    if (this.ended) return Promise.reject(new Error('this MCP server is shutting down: its session has ended'));
    this.opening ??= this.open().catch((err: unknown) => {
      this.opening = undefined; // the next call tries again
      throw err;
    });
    return this.opening;
  }

  /** Ends the session (its sandboxes are destroyed); idempotent, bounded in time, never throws. */
  async end(why: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    const opening = this.opening;
    if (!opening) return;
    let id: string | undefined;
    try {
      id = await opening;
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${END_TIMEOUT_MS} ms`)), END_TIMEOUT_MS).unref(),
      );
      await Promise.race([this.client.endSession(id), timeout]);
      this.opts.log.info({ sessionId: id }, `session ended (${why}); its sandboxes are being destroyed`);
    } catch (err) {
      // Its heartbeats stop with this process: the session still ends, a heartbeat timeout later.
      this.opts.log.warn(
        { sessionId: id, err },
        `could not end the session (${why}); it ends itself ${this.opts.heartbeatTimeoutSeconds} s ` +
          'after the last heartbeat',
      );
    }
  }

  /**
   * The session `id` ended under this server (a late heartbeat, someone ended it): its sandboxes are
   * gone, and the next id() opens a new session.
   */
  lost(id: string, why: string): void {
    if (this.ended || this.current !== id) return;
    this.opts.log.warn(
      { sessionId: id },
      `session ended under this MCP server: ${why}; the next sandbox opens a new one`,
    );
    clearInterval(this.timer);
    this.current = undefined;
    this.opening = undefined;
  }

  private async open(): Promise<string> {
    const { heartbeatTimeoutSeconds } = this.opts;
    const session = await this.client.createSession({ heartbeatTimeoutSeconds });
    this.opts.log.info({ sessionId: session.id }, `session opened (heartbeat timeout ${heartbeatTimeoutSeconds} s)`);
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.beat(session.id), (heartbeatTimeoutSeconds * 1000) / 3);
    this.timer.unref(); // stdin keeps the process alive, not the heartbeat
    this.current = session.id;
    return session.id;
  }

  private async beat(id: string): Promise<void> {
    try {
      await this.client.heartbeatSession(id);
    } catch (err) {
      if (this.ended) return;
      if (err instanceof HourglassApiError && (err.code === 'invalid_state' || err.code === 'not_found')) {
        return this.lost(id, err.message);
      }
      this.opts.log.warn({ sessionId: id, err }, 'session heartbeat failed; retrying at the next one');
    }
  }
}
