// Query strings of the event routes, validated with zod (the OpenAPI document uses them too).
import '../openapi/extend-zod';
import { z } from 'zod';
import { eventIdSchema } from '../../registry/event-id';
import { queryFlag } from '../query-flag';
import { listQuery } from '../schemas';

/** A global event id: a decimal bigint (what `id:` carries and Last-Event-ID sends back). */
export const eventId = eventIdSchema.openapi({ example: '1234' });

const follow = queryFlag.openapi({
  description: 'Stream Server-Sent Events (the connection stays open) instead of one JSON answer',
});

export const eventsQuery = z.object({
  follow,
  /** States entered; repeatable or comma-separated, as on the list endpoint. */
  state: listQuery.shape.state.openapi({
    description: 'Only events entering these states (repeat, or comma-separated: RUNNING,EXPIRED)',
  }),
  /** key=value, repeatable, as on the list endpoint. */
  label: listQuery.shape.label.openapi({ description: 'Only sandboxes with this label (key=value; repeatable)' }),
  session: listQuery.shape.sessionId.openapi({ description: 'Only sandboxes of this session' }),
  /** Admins only: one owner's events (others always see only their own). */
  owner: listQuery.shape.owner.openapi({ description: 'Admins only: one owner’s events' }),
  after: eventId.optional().openapi({
    description:
      'Events after this id. Following: an alternative to the Last-Event-ID header (which wins); default: ' +
      'from now on. JSON: default 0 (the oldest)',
  }),
  limit: z.coerce.number().int().min(1).max(500).default(100).openapi({ description: 'JSON page size' }),
});
export type EventsQuery = z.infer<typeof eventsQuery>;

export const sandboxEventsQuery = z.object({
  follow,
  after: eventId.optional().openapi({
    description: 'Following: events after this id (as Last-Event-ID, which wins); default: from the first',
  }),
});

export const lastEventIdHeader = z.object({
  'Last-Event-ID': eventId.optional().openapi({
    param: { description: 'Resume a stream after this event id (EventSource sends it by itself on reconnect)' },
  }),
});
