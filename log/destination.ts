// Where log lines go: JSON lines on stdout, pretty ones when stdout is a terminal. Tests take the
// lines instead (captureLogs) — the loggers made before keep working, they all write through `sink`.
import pino from 'pino';
import { prettyFactory } from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

export const logFormat = (): LogFormat => (process.stdout.isTTY ? 'pretty' : 'json');

function stdoutWriter(format: LogFormat): (line: string) => void {
  // Synchronous: `process.exit` right after a log line (a failed start) must not lose it.
  const out = pino.destination({ dest: 1, sync: true });
  if (format === 'json') return (line) => out.write(line);
  const prettify = prettyFactory({
    translateTime: 'SYS:HH:MM:ss.l',
    messageFormat: '{if component}[{component}] {end}{msg}',
    // The start-up record's data is its text already; pid and host are the same on every line.
    ignore: 'pid,hostname,component,startup',
  });
  return (line) => out.write(prettify(line));
}

let write = stdoutWriter(logFormat());

/** The one stream every logger writes to. */
export const sink = { write: (line: string) => write(line) };

export interface CapturedLogs {
  /** Every line so far, parsed. */
  records(): Record<string, unknown>[];
  /** Every line so far, as written. */
  text(): string;
  restore(): void;
}

/** A test hook: log lines are kept (JSON, not printed) until restore(). */
export function captureLogs(): CapturedLogs {
  const previous = write;
  const lines: string[] = [];
  write = (line) => void lines.push(line);
  return {
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => lines.join(''),
    restore: () => void (write = previous),
  };
}
