// Latency summaries: nearest-rank percentiles (no interpolation: every figure is a real sample).
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function quantile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    n: s.length,
    min: round(s[0] ?? NaN),
    p50: round(quantile(s, 0.5)),
    p95: round(quantile(s, 0.95)),
    p99: round(quantile(s, 0.99)),
    max: round(s.at(-1) ?? NaN),
    mean: round(s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN),
  };
}

/** a / b rounded to 2 decimals (NaN when either is missing). */
export function ratio(a: number, b: number): number {
  return b > 0 && Number.isFinite(a) ? Math.round((a / b) * 100) / 100 : NaN;
}

/** Per second, 2 decimals. */
export function rate(count: number, ms: number): number {
  return ms > 0 ? Math.round((count / (ms / 1000)) * 100) / 100 : NaN;
}
