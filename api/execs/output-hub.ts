// One per API process: the LISTEN connection on exec_output (the worker NOTIFYs `<sandboxId>
// <execId>` when it commits output or the exec's end), and the streams waiting on each exec. A
// stream is only woken: it reads what is new from the registry itself, so a lost notification
// costs a safety poll's delay, never output.
import type pg from 'pg';
import { componentLogger } from '../../log/logger';
import { EXEC_OUTPUT_CHANNEL } from '../../registry/exec-output';
import { EventListener, RECONNECTED, listenerConnectionConfig } from '../../registry/event-listener';

const log = componentLogger('exec-output');

export interface ExecOutputHubOptions {
  /** Exec streams this process holds open at once (each costs a socket and a buffer). */
  maxStreams: number;
  /** Of those, one owner's: no tenant can take all of them. */
  maxStreamsPerOwner: number;
  /** A stream re-reads this often even without a notification. */
  safetyPollMs: number;
}

export const DEFAULT_EXEC_HUB_OPTIONS: ExecOutputHubOptions = {
  maxStreams: 1000,
  maxStreamsPerOwner: 100,
  safetyPollMs: 5000,
};

/** Too many exec streams in this process: another API instance, or this one a little later, can take it. */
export class ExecStreamLimitError extends Error {
  constructor(readonly max: number) {
    super(`${max} exec streams already open in this API process`);
  }
}

/** One owner holds its share of this process's exec streams: a 429 (its own doing), not a 503. */
export class OwnerExecStreamLimitError extends Error {
  constructor(
    readonly owner: string,
    readonly max: number,
  ) {
    super(`${owner} holds ${max} exec streams in this API process`);
  }
}

/** A stream's registration: wakes it on news of its exec; close() cuts it (server shutdown). */
export interface ExecWatcher {
  wake(): void;
  close(): void;
}

export class ExecOutputHub {
  readonly opts: ExecOutputHubOptions;
  /** The process's LISTEN connection on exec_output (public for tests' eyes: its backend pid). */
  readonly listener: EventListener;
  private readonly byExec = new Map<string, Set<ExecWatcher>>();
  private readonly perOwner = new Map<string, number>();
  private count = 0;
  private subscription: Promise<() => void> | undefined;

  constructor(
    readonly pool: pg.Pool,
    opts: Partial<ExecOutputHubOptions> = {},
  ) {
    this.opts = { ...DEFAULT_EXEC_HUB_OPTIONS, ...opts };
    this.listener = new EventListener({
      connection: listenerConnectionConfig(pool),
      channel: EXEC_OUTPUT_CHANNEL,
      idleCloseMs: 5000,
      log: (msg) => log.warn(msg),
    });
  }

  get streams(): number {
    return this.count;
  }

  /**
   * Registers a watcher before its stream reads anything (so nothing committed meanwhile goes
   * unnoticed); resolves once LISTEN is on (or its first attempt failed: the safety poll covers it).
   * Returns the unregister function. Throws ExecStreamLimitError when the process is full.
   */
  async watch(sandboxId: string, execId: string, owner: string, w: ExecWatcher): Promise<() => void> {
    const owned = this.perOwner.get(owner) ?? 0;
    if (owned >= this.opts.maxStreamsPerOwner) throw new OwnerExecStreamLimitError(owner, this.opts.maxStreamsPerOwner);
    if (this.count >= this.opts.maxStreams) throw new ExecStreamLimitError(this.opts.maxStreams);
    this.perOwner.set(owner, owned + 1);
    const key = `${sandboxId} ${execId}`;
    let set = this.byExec.get(key);
    if (!set) this.byExec.set(key, (set = new Set()));
    set.add(w);
    this.count++;
    const subscription = (this.subscription ??= this.listener.subscribe((payload) => this.notify(payload)));
    let removed = false;
    const remove = () => {
      if (removed) return;
      removed = true;
      const left = (this.perOwner.get(owner) ?? 1) - 1;
      if (left > 0) this.perOwner.set(owner, left);
      else this.perOwner.delete(owner);
      set.delete(w);
      if (set.size === 0 && this.byExec.get(key) === set) this.byExec.delete(key);
      if (--this.count === 0 && this.subscription === subscription) {
        this.subscription = undefined;
        void subscription.then((unsubscribe) => unsubscribe()).catch(() => {});
      }
    };
    try {
      await subscription;
    } catch (err) {
      if (this.subscription === subscription) this.subscription = undefined;
      remove();
      throw err;
    }
    return remove;
  }

  /** Cuts every stream (server shutdown: clients resume elsewhere) and closes the LISTEN connection. */
  async close(): Promise<void> {
    for (const set of [...this.byExec.values()]) for (const w of [...set]) w.close();
    await this.listener.close();
  }

  private notify(payload: string): void {
    if (payload === RECONNECTED) {
      for (const set of this.byExec.values()) for (const w of set) w.wake();
      return;
    }
    for (const w of this.byExec.get(payload) ?? []) w.wake();
  }
}
