// The exec stream's SSE messages as ExecEvents (the spec's event names and data shapes).
import type { SseMessage } from './sse';
import type { ExecEvent } from './types';

/** The event, or undefined for a message this client does not know (a newer server's). */
export function toExecEvent(m: SseMessage): ExecEvent | undefined {
  const d = JSON.parse(m.data) as Record<string, unknown>;
  switch (m.event) {
    case 'start':
      return { type: 'start', execId: String(d.execId), sandboxId: d.sandboxId as string | undefined };
    case 'stdout':
    case 'stderr': {
      const data = typeof d.base64 === 'string' ? Buffer.from(d.base64, 'base64') : Buffer.from(String(d.text ?? ''));
      return { type: m.event, seq: Number(d.seq ?? m.id), data };
    }
    case 'notice':
      return { type: 'notice', message: String(d.message) };
    case 'exit':
      return {
        type: 'exit',
        execId: String(d.execId),
        exitCode: Number(d.exitCode),
        durationMs: Number(d.durationMs),
        timedOut: Boolean(d.timedOut),
      };
    case 'error':
      return { type: 'error', error: d.error as Extract<ExecEvent, { type: 'error' }>['error'] };
    default:
      return undefined;
  }
}

/** exit and error end an exec's stream; exactly one of them comes. */
export const isTerminal = (m: SseMessage) => m.event === 'exit' || m.event === 'error';
