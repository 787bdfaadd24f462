// What a tool answers: text for the model; refusals as isError results carrying the API's code and
// message (a thrown error would reach the client as a bare message, or not at all).
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { HourglassApiError } from '../../client';
import { mcpLog } from '../log';

export const text = (...parts: string[]): CallToolResult => ({
  content: parts.map((t) => ({ type: 'text' as const, text: t })),
});

export const json = (value: unknown): CallToolResult => text(JSON.stringify(value, null, 2));

export function failure(message: string, ...more: string[]): CallToolResult {
  return { ...text(message, ...more), isError: true };
}

/** `code: message` as the API said it, plus its details when they say more. */
export function describeFailure(err: unknown): string {
  if (err instanceof HourglassApiError) {
    const details = err.details === undefined ? '' : ` ${JSON.stringify(err.details)}`;
    return `${err.code}: ${err.message}${details.length > 1000 ? '' : details}`;
  }
  if (err instanceof Error && err.name === 'AbortError') return 'cancelled: the caller cancelled the request';
  return `error: ${err instanceof Error ? err.message : String(err)}`;
}

/** Runs a tool's body; whatever it throws becomes an isError result and a log line, never a crash. */
export function guarded<A extends unknown[]>(
  tool: string,
  body: (...args: A) => Promise<CallToolResult>,
): (...args: A) => Promise<CallToolResult> {
  return async (...args) => {
    try {
      return await body(...args);
    } catch (err) {
      const message = describeFailure(err);
      if (!(err instanceof HourglassApiError) || err.status === 0 || err.status >= 500) {
        mcpLog.warn({ tool, err }, `${tool} failed: ${message}`);
      }
      return failure(message);
    }
  };
}
