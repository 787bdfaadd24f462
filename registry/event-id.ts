// The global event id (migration 005's `sandbox_events.id`, a PostgreSQL bigint) as it travels:
// a decimal string. One schema for every place that takes one (SSE `after` / Last-Event-ID, the
// webhook deliveries cursor, the feed reader), so a value PostgreSQL would refuse is a 400, not a 500.
import { z } from 'zod';

/** The largest bigint: a larger id would make `$1::bigint` fail inside the query. */
export const MAX_EVENT_ID = 2n ** 63n - 1n;

export const eventIdSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,18})$/, 'must be an event id (a non-negative integer)')
  // 19 digits may still exceed the bigint range; the regex above guarantees BigInt() parses.
  .refine((v) => !/^[0-9]+$/.test(v) || BigInt(v) <= MAX_EVENT_ID, `must be an event id (at most ${MAX_EVENT_ID})`);
