import type { OpContext } from '../types';

/** Calls ctx.progress every second (activities turn it into heartbeats); returns a stop function. */
export function heartbeat(ctx: OpContext, detail: () => string): () => void {
  if (!ctx.progress) return () => undefined;
  const progress = ctx.progress;
  progress(detail());
  const timer = setInterval(() => progress(detail()), 1_000);
  return () => clearInterval(timer);
}
