// Load shapes: a fixed set of jobs `width` at a time, or a closed loop of `width` clients.
// Both stop starting jobs once the bench is interrupted.

/** Set on Ctrl-C: no new jobs (failing calls in a tight loop would starve the clean-up). */
export const abort = { requested: false };

/** Runs fn over items, at most `width` at once. */
export async function forEachLimit<T>(
  items: T[],
  width: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length && !abort.requested) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/**
 * `width` clients each running fn back to back until `durationMs` has passed (or `maxCount` jobs
 * were started, when given); jobs in flight then finish. Returns how long until the last finished.
 */
export async function closedLoop(
  width: number,
  durationMs: number,
  maxCount: number,
  fn: (index: number) => Promise<void>,
): Promise<number> {
  const started = performance.now();
  let count = 0;
  const more = () => !abort.requested && (maxCount > 0 ? count < maxCount : performance.now() - started < durationMs);
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (more()) await fn(count++);
    }),
  );
  return performance.now() - started;
}
