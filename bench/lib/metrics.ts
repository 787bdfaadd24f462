// A Prometheus histogram read back from a /metrics scrape: what an operator's dashboard would show,
// printed beside the bench's own measure of the same thing.
export interface ScrapedHistogram {
  count: number;
  sum: number;
  /** Cumulative counts by upper bound (seconds), summed over every label set; +Inf last. */
  buckets: { le: number; count: number }[];
}

export function scrapedHistogram(text: string, name: string): ScrapedHistogram {
  const byLe = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+?)(_bucket|_count|_sum)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const value = Number(m[4]);
    if (m[2] === '_count') {
      count += value;
    } else if (m[2] === '_sum') {
      sum += value;
    } else {
      const le = /le="([^"]+)"/.exec(m[3] ?? '')?.[1];
      const bound = le === '+Inf' ? Infinity : Number(le);
      byLe.set(bound, (byLe.get(bound) ?? 0) + value);
    }
  }
  const buckets = [...byLe].map(([le, c]) => ({ le, count: c })).sort((a, b) => a.le - b.le);
  return { count, sum, buckets };
}

/** The smallest bucket bound under which at least `q` of the observations fall (PromQL would interpolate). */
export function quantileBound(h: ScrapedHistogram, q: number): number {
  const target = q * h.count;
  return h.buckets.find((b) => b.count >= target)?.le ?? Infinity;
}
