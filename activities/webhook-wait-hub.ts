// One reader per worker process for every webhook wait it runs. Without it each NOTIFY woke every
// wait and each re-read the feed: N subscriptions × 1 query per event. Here the hub reads the new
// events once (unfiltered), checks each wait's filter in memory, and wakes only the waits that have
// a matching event past their `through`: a quiet subscription costs no query per event.
import type pg from 'pg';
import { compareIds, latestEventId, readFeedPage, type FeedEvent, type FeedFilter } from '../registry/event-feed';
import type { EventListener } from '../registry/event-listener';
import { matches } from '../registry/event-match';

export interface Waiter {
  /** The wait has read every matching event up to here (a decimal id). */
  through: string;
  /** Webhooks filter on owner and states only. */
  filter: Pick<FeedFilter, 'owner' | 'states'>;
  wake(): void;
}

/** Events per read of the hub: a burst larger than this is read in several pages. */
const PAGE = 500;

export class WebhookWaitHub {
  private readonly waiters = new Set<Waiter>();
  /** Every event up to here has been checked against the waits (undefined while not listening). */
  private scanned: string | undefined;
  private target = '0';
  private reading: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Feed reads the hub made (for tests and the bench: one per NOTIFY burst, not one per wait). */
  reads = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly listener: EventListener,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  /** Whether wakes are live (while false, a wait re-reads on its own timer). */
  get isListening(): boolean {
    return this.scanned !== undefined && this.listener.isListening;
  }

  /**
   * Registers a wait. Resolves once events committed from now on will wake it: the wait's own read
   * after this covers everything before (its `through`), the hub everything after.
   */
  async add(w: Waiter): Promise<() => void> {
    this.waiters.add(w);
    if (!this.unsubscribe) this.starting ??= this.start();
    await this.starting;
    return () => this.remove(w);
  }

  private async start(): Promise<void> {
    try {
      this.unsubscribe = await this.listener.subscribe((upTo) => this.announce(upTo));
      // LISTEN is active: anything committed from now on is announced; anything before is the waits' own read.
      const newest = await latestEventId(this.pool);
      this.scanned ??= newest;
      if (compareIds(this.target, newest) < 0) this.target = newest;
    } catch (err) {
      this.log(`webhook wait hub could not start (${(err as Error).message}); waits re-read on their own`);
    } finally {
      this.starting = undefined;
    }
  }

  private remove(w: Waiter): void {
    this.waiters.delete(w);
    if (this.waiters.size > 0 || !this.unsubscribe) return;
    // Nobody waits: let the listener close when idle; the next wait starts from the newest id again.
    this.unsubscribe();
    this.unsubscribe = undefined;
    this.scanned = undefined;
  }

  private announce(upTo: string): void {
    if (compareIds(upTo, this.target) > 0) this.target = upTo;
    // After a reconnect the listener announces the newest id again: read past whatever was missed.
    this.reading ??= this.readUpToTarget().finally(() => (this.reading = undefined));
  }

  private async readUpToTarget(): Promise<void> {
    while (this.scanned !== undefined && compareIds(this.scanned, this.target) < 0) {
      let page: { events: FeedEvent[]; through: string };
      try {
        page = await readFeedPage(this.pool, this.scanned, {}, PAGE);
        this.reads += 1;
      } catch (err) {
        // Cannot tell who has news: wake everyone (each re-reads with its own filter) and move on.
        this.log(`webhook wait hub read failed (${(err as Error).message}); waking every wait`);
        for (const w of this.waiters) w.wake();
        this.scanned = this.target;
        return;
      }
      for (const w of this.waiters) {
        if (page.events.some((e) => compareIds(e.id, w.through) > 0 && matches(w.filter, e))) w.wake();
      }
      if (this.scanned === undefined) return; // everyone left meanwhile
      this.scanned = page.through;
    }
  }
}
