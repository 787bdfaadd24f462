// Live events (api/events/routes.ts): GET /v1/events, and the streaming side of
// GET /v1/sandboxes/{id}/events (that path's registration in sandboxes.ts takes the pieces below).
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { FeedEvent as FeedEventType } from '../../../registry/event-feed';
import { SANDBOX_STATES } from '../../../workflows/states';
import { eventsQuery, lastEventIdHeader, sandboxEventsQuery } from '../../events/schemas';
import { ErrorEnvelope, authErrors, json, shapeOf } from '../common';

export const FeedEvent = shapeOf<FeedEventType>()(
  z.object({
    id: z.string().openapi({ description: 'The global event id (commit order), a decimal string: SSE `id:`' }),
    type: z.string().openapi({ description: '`sandbox.` + the state entered, lowercased', example: 'sandbox.expired' }),
    sandboxId: z.string(),
    owner: z.string(),
    driver: z.string(),
    labels: z.record(z.string()),
    sessionId: z.string().optional(),
    seq: z.number().int().openapi({ description: 'The sandbox’s own transition number' }),
    from: z.enum(SANDBOX_STATES).nullable(),
    to: z.enum(SANDBOX_STATES),
    reason: z.string().openapi({ example: 'lease expired' }),
    at: z.string().openapi({ format: 'date-time' }),
  }),
).openapi('Event');

const EventPage = z
  .object({
    items: z.array(FeedEvent),
    nextAfter: z.string().openapi({ description: 'Pass as `after` for the next page (also when this one was short)' }),
  })
  .openapi('EventPage');

/** The 200 of a stream: `text/event-stream` frames. */
export const eventStream: ResponseConfig['content'] = {
  'text/event-stream': {
    schema: z.string().openapi({
      description:
        'Server-Sent Events. Each event: `id: <event id>`, `event: <type>`, `data: <Event JSON>`; a `retry:` hint ' +
        'first and a `: keepalive` comment every 15 s. Reconnect with `Last-Event-ID` (EventSource does) to ' +
        'resume with no gap and no duplicate, on any API instance. A reader that falls over 1 MiB behind is cut ' +
        'off (it resumes the same way).',
      example: 'id: 1234\nevent: sandbox.running\ndata: {"id":"1234","type":"sandbox.running",…}\n\n',
    }),
  },
};

/** A stream's own refusals: the per-owner and per-process caps, and a start past the newest event. */
export const streamLimit: Record<string, ResponseConfig> = {
  400: {
    description:
      'invalid_argument: a bad query, or `Last-Event-ID` / `after` not an event id or past the newest event ' +
      '(the message names the newest id)',
    content: json(ErrorEnvelope),
  },
  429: {
    description: 'rate_limited: the owner has too many event streams open (50); see Retry-After',
    headers: z.object({ 'Retry-After': z.string().optional() }),
    content: json(ErrorEnvelope),
  },
  503: {
    description: 'unavailable: this API process has too many event streams open (1,000); see Retry-After',
    headers: z.object({ 'Retry-After': z.string().optional() }),
    content: json(ErrorEnvelope),
  },
};

/** What GET /v1/sandboxes/{id}/events takes beyond its id (registered in sandboxes.ts). */
export const sandboxEventsRequest = { query: sandboxEventsQuery, headers: lastEventIdHeader };

export function registerEventPaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'get',
    path: '/v1/events',
    tags: ['events'],
    summary: 'Every sandbox event you may see, in commit order: a JSON page, or a live stream with follow=true',
    description:
      'A user sees their own owner’s events; an admin every owner’s (or one, with `owner`). Following starts ' +
      'from now unless `Last-Event-ID` or `after` says where; `Accept: text/event-stream` also streams.',
    request: { query: eventsQuery, headers: lastEventIdHeader },
    responses: {
      200: {
        description: 'A page of events (JSON), or the live stream (follow=true)',
        content: { ...json(EventPage), ...eventStream },
      },
      ...authErrors(),
      ...streamLimit,
    },
  });
}
