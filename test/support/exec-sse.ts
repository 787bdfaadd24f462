// Exec streams for tests: POST /exec with stream (or GET …/output?follow=true), read as SSE
// messages with a deadline per read, and the figures the data-plane tests print.
import { SseParser, type SseMessage } from '../../client/sse';

export type { SseMessage };

export interface ExecStream {
  res: Response;
  /** The next message (null once the server has ended the stream); throws after timeoutMs. */
  next(timeoutMs?: number): Promise<SseMessage | null>;
  /** Messages up to and including the terminal one (exit/error), or until the stream ends. */
  untilEnd(timeoutMs?: number): Promise<SseMessage[]>;
  /** Messages until `stop` says so (inclusive). */
  until(stop: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage[]>;
  /** Drops the connection (a client gone mid-stream). */
  close(): void;
}

export const isTerminal = (m: SseMessage) => m.event === 'exit' || m.event === 'error';

export async function openStream(url: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const abort = new AbortController();
  const res = await fetch(url, {
    ...init,
    headers: { accept: 'text/event-stream', ...init.headers },
    signal: abort.signal,
  });
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const pending: SseMessage[] = [];
  let ended = false;
  let inFlight: ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']> | undefined;
  const reader = res.body?.getReader();
  const next = async (timeoutMs = 60_000): Promise<SseMessage | null> => {
    const deadline = Date.now() + timeoutMs;
    while (pending.length === 0 && !ended && reader) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no SSE message within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left)));
      const read = (inFlight ??= reader.read());
      const got = await Promise.race([read, timeout]);
      clearTimeout(timer);
      if (got === 'timeout') continue;
      inFlight = undefined;
      if (got.done) ended = true;
      else pending.push(...parser.feed(decoder.decode(got.value, { stream: true })));
    }
    return pending.shift() ?? null;
  };
  const until = async (stop: (m: SseMessage) => boolean, timeoutMs = 120_000) => {
    const all: SseMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await next(Math.max(1, deadline - Date.now()));
      if (!m) return all;
      all.push(m);
      if (stop(m)) return all;
    }
  };
  const stream: ExecStream = {
    res,
    next,
    until,
    untilEnd: (timeoutMs) => until(isTerminal, timeoutMs),
    close: () => {
      ended = true;
      abort.abort();
    },
  };
  return stream;
}

/** The bytes of the stdout events, in order. */
export function stdoutOf(messages: SseMessage[]): Buffer {
  return Buffer.concat(
    messages
      .filter((m) => m.event === 'stdout')
      .map((m) => {
        const d = JSON.parse(m.data) as { text?: string; base64?: string };
        return d.text !== undefined ? Buffer.from(d.text) : Buffer.from(d.base64!, 'base64');
      }),
  );
}

/** Output seqs (the `id:` of stdout/stderr/notice) in the order they came. */
export const seqsOf = (messages: SseMessage[]) => messages.filter((m) => m.id !== undefined).map((m) => Number(m.id));

/** A shell loop printing `line <n>` for 1..count (busybox sh and bash alike), with a pause every `pauseEvery`. */
export function numberedLines(count: number, pauseEvery?: number, pause = '0.2'): string[] {
  const sleep = pauseEvery ? `; [ $((i % ${pauseEvery})) -eq 0 ] && sleep ${pause}` : '';
  return ['sh', '-c', `i=1; while [ $i -le ${count} ]; do echo "line $i"${sleep}; i=$((i+1)); done; true`];
}

export const expectedLines = (count: number) => Array.from({ length: count }, (_, i) => `line ${i + 1}\n`).join('');

export const mbPerSecond = (bytes: number, ms: number) => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
