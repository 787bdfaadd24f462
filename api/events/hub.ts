// One per API process: reads the event feed once per wake-up (the LISTEN connection's, or a slow
// safety poll) and hands each new event to every live stream whose filter it matches. A stream
// first catches up from the database on its own (its backlog), then joins: the hub keeps the
// newest events in memory so that hand-over has no gap, whatever the hub read in the meantime.
import type pg from 'pg';
import { componentLogger } from '../../log/logger';
import {
  compareIds,
  latestEventId,
  maxId,
  readFeedPage,
  type FeedEvent,
  type FeedFilter,
} from '../../registry/event-feed';
import { EventListener, listenerConnectionConfig } from '../../registry/event-listener';
import { matches } from '../../registry/event-match';
import type { SseOptions } from './sse';

const log = componentLogger('events');

export interface EventHubOptions {
  /** Events kept in memory for streams joining after their backlog (not a resume window: that is the DB). */
  recentEvents: number;
  /** Events read per query, by the hub and by a stream's backlog. */
  pageSize: number;
  /** A read this often even without a notification (a lost NOTIFY costs this much delay, never an event). */
  safetyPollMs: number;
  /** Concurrent streams one owner may hold open. */
  maxStreamsPerOwner: number;
  /** Concurrent streams this process holds open, all owners together (each costs a socket and a buffer). */
  maxStreams: number;
  /** A sandbox's stream stays open this long after its DESTROYED event, for writes that committed after it. */
  destroyedGraceMs: number;
  sse: SseOptions;
}

export const DEFAULT_HUB_OPTIONS: EventHubOptions = {
  recentEvents: 5000,
  pageSize: 500,
  safetyPollMs: 5000,
  maxStreamsPerOwner: 50,
  maxStreams: 1000,
  destroyedGraceMs: 2000,
  sse: { retryMs: 2000, heartbeatMs: 15_000, maxBufferedBytes: 1024 * 1024, stallMs: 30_000 },
};

/** A stream as the hub sees it. */
export interface Subscriber {
  readonly owner: string;
  readonly filter: FeedFilter;
  /** Every matching event up to this id has been handed over (or was before the stream's start). */
  through: string;
  /** Takes one event; false when the stream is gone. */
  deliver(e: FeedEvent): boolean;
  /** Whether more may be written now (false: what was written has not left yet). */
  readonly hasRoom: boolean;
  /** Cuts the stream (server shutdown): its client resumes elsewhere from its last id. */
  close(): void;
}

/** Too many streams: one owner's (429, close one) or the whole process's (503, try again later). */
export class StreamLimitError extends Error {
  constructor(
    readonly scope: 'owner' | 'process',
    readonly max: number,
  ) {
    super(`${max} event streams already open (${scope})`);
  }
}

export class EventHub {
  private readonly opts: EventHubOptions;
  /** The process's LISTEN connection (public for operators' and tests' eyes: its backend pid). */
  readonly listener: EventListener;
  private readonly live = new Set<Subscriber>();
  private readonly members = new Set<Subscriber>();
  private readonly perOwner = new Map<string, number>();
  /** The hub has read every event up to `through`; `recent` holds those after `recentFrom`. */
  private through = '0';
  private recentFrom = '0';
  private recent: FeedEvent[] = [];
  private started: Promise<void> | undefined;
  private stopListening: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reading = false;
  private readAgain = false;
  /** A wake-up came while start() was still under way: read once it is done. */
  private wokenEarly = false;
  /** Bumped on every stop, so a read that outlives its start is dropped. */
  private generation = 0;

  constructor(
    readonly pool: pg.Pool,
    opts: Partial<EventHubOptions> = {},
  ) {
    this.opts = { ...DEFAULT_HUB_OPTIONS, ...opts };
    this.listener = new EventListener({
      connection: listenerConnectionConfig(pool),
      idleCloseMs: 5000,
      log: (msg) => log.warn(msg),
    });
  }

  get options(): EventHubOptions {
    return this.opts;
  }

  /**
   * Registers a stream (before it reads its backlog, so nothing committed meanwhile is missed) and
   * starts the hub if needed. Throws StreamLimitError when the owner, or the process, has too many open.
   */
  async add(s: Subscriber): Promise<void> {
    if (this.members.size >= this.opts.maxStreams) throw new StreamLimitError('process', this.opts.maxStreams);
    const open = this.perOwner.get(s.owner) ?? 0;
    if (open >= this.opts.maxStreamsPerOwner) throw new StreamLimitError('owner', this.opts.maxStreamsPerOwner);
    this.perOwner.set(s.owner, open + 1);
    this.members.add(s);
    try {
      this.started ??= this.start().catch((err: unknown) => {
        this.started = undefined;
        throw err;
      });
      await this.started;
    } catch (err) {
      this.remove(s);
      throw err;
    }
  }

  remove(s: Subscriber): void {
    if (!this.members.delete(s)) return;
    this.live.delete(s);
    const open = (this.perOwner.get(s.owner) ?? 1) - 1;
    if (open > 0) this.perOwner.set(s.owner, open);
    else this.perOwner.delete(s.owner);
    if (this.members.size === 0) this.stop();
  }

  /**
   * Hands a stream that has caught up to `s.through` from the database over to the hub. False
   * when the hub no longer holds the events right after it (it fell that far behind), or the
   * stream's buffer filled up on the way: read more from the database (after it drained).
   */
  join(s: Subscriber): boolean {
    if (!this.members.has(s) || compareIds(s.through, this.recentFrom) < 0) return false;
    for (const e of this.recent) {
      if (compareIds(e.id, s.through) <= 0 || !matches(s.filter, e)) continue;
      if (!s.deliver(e)) return true;
      s.through = e.id;
      // Up to recentEvents at once would blow through the buffer bound in one tick.
      if (!s.hasRoom) return false;
    }
    s.through = maxId(s.through, this.through);
    this.live.add(s);
    return true;
  }

  /** Ends every stream (server shutdown) and the LISTEN connection. */
  async close(): Promise<void> {
    for (const s of [...this.members]) {
      s.close();
      this.remove(s);
    }
    this.stop();
    await this.listener.close();
  }

  get streams(): number {
    return this.members.size;
  }

  private async start(): Promise<void> {
    const generation = this.generation;
    const unsubscribe = await this.listener.subscribe(() => this.wake());
    // LISTEN is on: everything after this id will wake us. Wake-ups until now are for events it includes.
    this.wokenEarly = false;
    const latest = await latestEventId(this.pool).catch((err) => {
      unsubscribe();
      throw err;
    });
    if (generation !== this.generation) {
      unsubscribe();
      return;
    }
    this.stopListening = unsubscribe;
    this.through = this.recentFrom = latest;
    this.recent = [];
    this.poll = setInterval(() => this.wake(), this.opts.safetyPollMs);
    this.poll.unref();
    // A NOTIFY that came while we started was not read then: read now, not at the next safety poll.
    if (this.wokenEarly) this.wake();
  }

  private stop(): void {
    this.generation++;
    this.started = undefined;
    this.stopListening?.();
    this.stopListening = undefined;
    clearInterval(this.poll);
    this.poll = undefined;
    this.recent = [];
  }

  /** Reads everything new, once, however many wake-ups arrive meanwhile. */
  private wake(): void {
    if (!this.stopListening) {
      if (this.started) this.wokenEarly = true;
      return;
    }
    this.wokenEarly = false;
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    void this.readNew().finally(() => {
      this.reading = false;
      if (this.readAgain) {
        this.readAgain = false;
        this.wake();
      }
    });
  }

  private async readNew(): Promise<void> {
    const generation = this.generation;
    try {
      for (;;) {
        const page = await readFeedPage(this.pool, this.through, {}, this.opts.pageSize);
        if (generation !== this.generation) return;
        this.publish(page.events, page.through);
        if (page.events.length < this.opts.pageSize) return;
      }
    } catch (err) {
      // The next notification, reconnect or safety poll reads again from the same place.
      log.warn({ err }, 'reading new events failed');
    }
  }

  private publish(events: FeedEvent[], through: string): void {
    this.recent.push(...events);
    const over = this.recent.length - this.opts.recentEvents;
    if (over > 0) this.recentFrom = this.recent.splice(0, over).at(-1)!.id;
    this.through = through;
    for (const s of [...this.live]) {
      for (const e of events) {
        if (compareIds(e.id, s.through) > 0 && matches(s.filter, e) && !s.deliver(e)) break;
      }
      if (this.live.has(s)) s.through = maxId(s.through, through);
    }
  }
}
