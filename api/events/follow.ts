// One SSE stream: register with the hub first, then send the backlog after the client's last id
// from the database, then hand over to the hub for live events. Ids only ever increase on the
// wire (each event is sent once, in id order), so Last-Event-ID resumes exactly.
import type { Response } from 'express';
import { componentLogger } from '../../log/logger';
import { compareIds, readFeedPage, type FeedEvent, type FeedFilter } from '../../registry/event-feed';
import type { EventHub, Subscriber } from './hub';
import { SseStream } from './sse';

const log = componentLogger('events');

export interface FollowRequest {
  owner: string;
  filter: FeedFilter;
  /** Send events after this id. */
  after: string;
  /** End the stream after this event (a sandbox's DESTROYED: nothing can follow it). */
  isLast?: (e: FeedEvent) => boolean;
}

/**
 * Registers the stream with the hub (throws StreamLimitError before anything is written), then
 * streams in the background until the client leaves, the last event is sent, or the hub closes.
 */
export async function follow(hub: EventHub, res: Response, req: FollowRequest): Promise<void> {
  const follower = new Follower(req);
  await hub.add(follower);
  if (!res.socket || res.socket.destroyed) {
    hub.remove(follower); // the client left while we waited: no 'close' would ever free its slot
    return;
  }
  const stream = new SseStream(res, hub.options.sse);
  stream.onStop = () => hub.remove(follower);
  follower.stream = stream;
  void catchUp(hub, stream, follower).catch((err: unknown) => {
    // Headers are sent: the client sees the stream end and resumes from its last id.
    log.warn({ err }, 'event stream failed while catching up');
    stream.cut();
  });
}

class Follower implements Subscriber {
  readonly owner: string;
  readonly filter: FeedFilter;
  through: string;
  /** Set once the hub has accepted the stream (before that, nothing is delivered). */
  stream: SseStream | undefined;

  constructor(private readonly req: FollowRequest) {
    this.owner = req.owner;
    this.filter = req.filter;
    this.through = req.after;
  }

  deliver(e: FeedEvent): boolean {
    const stream = this.stream;
    if (!stream?.isOpen) return false;
    // Belt and braces: the hub and the backlog never overlap, but a repeat must not reach the wire.
    if (stream.lastId !== undefined && compareIds(e.id, stream.lastId) <= 0) return true;
    if (!stream.send(e)) return false;
    if (this.req.isLast?.(e)) {
      stream.end();
      return false;
    }
    return true;
  }

  close(): void {
    this.stream?.cut();
  }
}

async function catchUp(hub: EventHub, stream: SseStream, s: Subscriber): Promise<void> {
  for (;;) {
    const page = await readFeedPage(hub.pool, s.through, s.filter, hub.options.pageSize);
    for (const e of page.events) {
      if (!s.deliver(e)) return;
      // Never more than half the bound waiting: a slow reader's backlog stays on disk, not here.
      if (!stream.hasRoom && !(await stream.drained(hub.options.sse.stallMs))) {
        stream.cut();
        return;
      }
    }
    s.through = page.through;
    if (page.events.length < hub.options.pageSize && hub.join(s)) return;
    if (!stream.isOpen) return;
  }
}
