// One SSE stream: register with the hub first, then send the backlog after the client's last id
// from the database, then hand over to the hub for live events. Ids only ever increase on the
// wire (each event is sent once, in id order), so Last-Event-ID resumes exactly.
import type { Response } from 'express';
import { componentLogger } from '../../log/logger';
import { compareIds, maxId, readFeedPage, type FeedEvent, type FeedFilter } from '../../registry/event-feed';
import type { EventHub, Subscriber } from './hub';
import { SseStream } from './sse';

const log = componentLogger('events');

export interface FollowRequest {
  owner: string;
  filter: FeedFilter;
  /** Send events after this id. */
  after: string;
  /**
   * The stream ends a grace period (hub option destroyedGraceMs) after this event: a sandbox's
   * DESTROYED. Not at once: the sandbox's other writes may commit after it (ids follow commit
   * order, not seq), and a follower must not miss them.
   */
  isLast?: (e: FeedEvent) => boolean;
  /** The last event was already committed when the stream opened: start the grace period at once. */
  lastSeen?: boolean;
}

/**
 * Registers the stream with the hub (throws StreamLimitError before anything is written), then
 * streams in the background until the client leaves, the last event is sent, or the hub closes.
 */
export async function follow(hub: EventHub, res: Response, req: FollowRequest): Promise<void> {
  const follower = new Follower(hub, req);
  await hub.add(follower);
  if (!res.socket || res.socket.destroyed) {
    hub.remove(follower); // the client left while we waited: no 'close' would ever free its slot
    return;
  }
  const stream = new SseStream(res, hub.options.sse);
  stream.onStop = () => {
    follower.stopped();
    hub.remove(follower);
  };
  follower.stream = stream;
  if (req.lastSeen) follower.endSoon();
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
  private ending: NodeJS.Timeout | undefined;

  constructor(
    private readonly hub: EventHub,
    private readonly req: FollowRequest,
  ) {
    this.owner = req.owner;
    this.filter = req.filter;
    this.through = req.after;
  }

  get hasRoom(): boolean {
    return this.stream?.hasRoom ?? false;
  }

  deliver(e: FeedEvent): boolean {
    const stream = this.stream;
    if (!stream?.isOpen) return false;
    // Belt and braces: the hub and the backlog never overlap, but a repeat must not reach the wire.
    if (stream.lastId !== undefined && compareIds(e.id, stream.lastId) <= 0) return true;
    if (!stream.send(e)) return false;
    if (this.req.isLast?.(e)) this.endSoon();
    return true;
  }

  close(): void {
    this.stream?.cut();
  }

  /** Ends the stream after the grace period and one last read of the database. */
  endSoon(): void {
    if (this.ending) return;
    this.ending = setTimeout(() => {
      void this.finish().catch((err: unknown) => {
        log.warn({ err }, 'event stream failed on its last read');
        this.stream?.cut();
      });
    }, this.hub.options.destroyedGraceMs);
    this.ending.unref();
  }

  stopped(): void {
    clearTimeout(this.ending);
  }

  /** Whatever committed meanwhile and the hub has not handed over yet (a lost NOTIFY), then the end. */
  private async finish(): Promise<void> {
    const stream = this.stream;
    if (!stream?.isOpen) return;
    const { pool, options } = this.hub;
    for (let after = maxId(this.through, stream.lastId ?? '0'); ;) {
      const page = await readFeedPage(pool, after, this.filter, options.pageSize);
      for (const e of page.events) if (!this.deliver(e)) return;
      if (page.events.length < options.pageSize) break;
      after = page.through;
    }
    stream.end();
  }
}

async function catchUp(hub: EventHub, stream: SseStream, s: Subscriber): Promise<void> {
  for (;;) {
    // Never more than half the bound waiting: a slow reader's backlog stays on disk, not here.
    if (!stream.hasRoom && !(await stream.drained(hub.options.sse.stallMs))) {
      stream.cut();
      return;
    }
    const page = await readFeedPage(hub.pool, s.through, s.filter, hub.options.pageSize);
    for (const e of page.events) {
      if (!s.deliver(e)) return;
      if (!stream.hasRoom && !(await stream.drained(hub.options.sse.stallMs))) {
        stream.cut();
        return;
      }
    }
    s.through = maxId(s.through, page.through);
    // join() is false when the hub no longer holds what follows, or it filled the buffer: read on.
    if (page.events.length < hub.options.pageSize && hub.join(s)) return;
    if (!stream.isOpen) return;
  }
}
