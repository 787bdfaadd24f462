// The feed filter applied in memory, to events a hub has already read (API streams, webhook waits):
// the same rules as the SQL in readFeedPage, so a stream's backlog and its live part agree.
import type { FeedEvent, FeedFilter } from './event-feed';

export function matches(f: FeedFilter, e: FeedEvent): boolean {
  if (f.owner !== undefined && e.owner !== f.owner) return false;
  if (f.sandboxId !== undefined && e.sandboxId !== f.sandboxId) return false;
  if (f.states?.length && !f.states.includes(e.to)) return false;
  if (f.sessionId !== undefined && e.sessionId !== f.sessionId) return false;
  if (f.labels) {
    for (const [k, v] of Object.entries(f.labels)) if (e.labels[k] !== v) return false;
  }
  return true;
}
