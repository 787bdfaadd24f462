// What a bench prints: markdown tables on stdout (progress goes to stderr), numbers made readable.
import { abort } from './pool';
import type { Summary } from './stats';

// An interrupted bench prints no figures: they would be of a run cut short.

export function table(headers: string[], rows: (string | number)[][]): void {
  if (abort.requested) return;
  const cell = (v: string | number) => (typeof v === 'number' ? num(v) : v);
  console.log(`| ${headers.join(' | ')} |`);
  console.log(`| ${headers.map(() => '---').join(' | ')} |`);
  for (const row of rows) console.log(`| ${row.map(cell).join(' | ')} |`);
  console.log('');
}

export const SUMMARY_HEADERS = ['n', 'p50', 'p95', 'p99', 'max'];

/** The cells of a summary, in SUMMARY_HEADERS order. */
export function summaryCells(s: Summary): number[] {
  return [s.n, s.p50, s.p95, s.p99, s.max];
}

export function heading(text: string): void {
  line(`\n### ${text}\n`);
}

/** One line of the report on stdout. */
export function line(text: string): void {
  if (!abort.requested) console.log(text);
}

/** Whole numbers above 10, one decimal below; "–" for missing. */
export function num(v: number): string {
  if (!Number.isFinite(v)) return '–';
  return Math.abs(v) >= 10 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(Math.abs(v) < 1 ? 2 : 1);
}

const started = Date.now();

/** Progress on stderr, stamped with seconds since the bench started. */
export function log(message: string): void {
  process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
}

/** A ratio as "1.37×". */
export const times = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : '–');

export const MiB = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
