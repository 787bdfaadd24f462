// The event feed: a JSON page, or followed live (SSE) with resumption after a dropped connection.
import { followSse } from './follow';
import { seg, type Http } from './http';
import { labelQuery, stateQuery } from './query';
import type { SseMessage } from './sse';
import type { EventPage, EventsQuery, FeedEvent } from './types';

const SSE = 'text/event-stream';

/** Events in commit order after `after` (default the oldest). */
export function listEvents(http: Http, query: EventsQuery = {}): Promise<EventPage> {
  return http.json('GET', '/v1/events', { query: feedQuery(query) });
}

/** Events as they are committed, from now on (or after `after`), until `signal` aborts or you break. */
export async function* followEvents(
  http: Http,
  query: Omit<EventsQuery, 'limit'> = {},
  opts: { signal?: AbortSignal } = {},
): AsyncGenerator<FeedEvent> {
  const { after, ...filter } = query;
  yield* feedEvents(
    followSse({
      signal: opts.signal,
      isLast: () => false,
      open: (lastId, _reopen, signal) =>
        http.send('GET', '/v1/events', {
          query: { ...feedQuery(filter), follow: 'true', after: lastId === undefined ? after : undefined },
          headers: { accept: SSE, 'last-event-id': lastId },
          signal,
        }),
    }),
  );
}

/** One sandbox's events from its first (or after `after`); ends after DESTROYED. */
export async function* followSandboxEvents(
  http: Http,
  id: string,
  opts: { after?: string; signal?: AbortSignal } = {},
): AsyncGenerator<FeedEvent> {
  yield* feedEvents(
    followSse({
      signal: opts.signal,
      // The server closes the stream itself after DESTROYED; a reopen then answers 204.
      isLast: () => false,
      open: (lastId, _reopen, signal) =>
        http.send('GET', `/v1/sandboxes/${seg(id)}/events`, {
          query: { follow: 'true', after: lastId === undefined ? opts.after : undefined },
          headers: { accept: SSE, 'last-event-id': lastId },
          signal,
        }),
    }),
  );
}

async function* feedEvents(messages: AsyncIterable<SseMessage>): AsyncGenerator<FeedEvent> {
  for await (const m of messages) yield JSON.parse(m.data) as FeedEvent;
}

function feedQuery({ state, label, ...rest }: EventsQuery) {
  return { ...rest, state: stateQuery(state), label: labelQuery(label) };
}
