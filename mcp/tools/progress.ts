// Progress notifications for one tool call: only when the caller sent a progressToken, at most one
// per interval (a chatty command must not flood the client), never after the result.
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface Progress {
  /**
   * The latest progress and message. The protocol wants `progress` to grow from one notification to
   * the next: one not above the last sent goes out a thousandth above it (news in the same millisecond).
   */
  report(progress: number, message: () => string): void;
  /**
   * Stops, dropping what is pending: the result follows at once and carries it. (Sent now, it
   * would reach the client in the same read as the result, and the MCP SDK client handles the
   * notification a microtask after the result ended the call: it drops it as an unknown token.)
   */
  finish(): Promise<void>;
}

const NONE: Progress = { report: () => {}, finish: async () => {} };

export function progressOf(extra: ToolExtra, intervalMs = 200): Progress {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return NONE;
  let sentAt = 0;
  let sent = -Infinity;
  let pending: { progress: number; message: () => string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  let sending = Promise.resolve();

  const send = () => {
    timer = undefined;
    if (!pending) return;
    const progress = Math.max(pending.progress, sent + 0.001);
    const { message } = pending;
    pending = undefined;
    sent = progress;
    sentAt = Date.now();
    const notification = {
      method: 'notifications/progress' as const,
      params: { progressToken, progress, message: message() },
    };
    // A closed transport: the call is over anyway, nothing to tell.
    sending = sending.then(() => extra.sendNotification(notification)).catch(() => {});
  };

  return {
    report(progress, message) {
      if (done) return;
      pending = { progress, message };
      if (timer) return;
      const wait = sentAt + intervalMs - Date.now();
      if (wait <= 0) send();
      else timer = setTimeout(send, wait);
    },
    async finish() {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pending = undefined;
      await sending;
    },
  };
}
