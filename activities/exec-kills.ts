// Kills of streamed and background commands, delivered to the worker that runs them through the
// registry: the workflow marks the exec kill_requested (migration 007 NOTIFYs exec_kill), and this
// process's one listener aborts that command's driver call, whose driver kills its process tree.
// Temporal's own cancellation arrives only with a heartbeat: as quick would mean a heartbeat a
// second per command, ~600 RPCs a second for 1,000 background commands.
import type pg from 'pg';
import { componentLogger } from '../log/logger';
import { EventListener, RECONNECTED, listenerConnectionConfig } from '../registry/event-listener';

export const EXEC_KILL_CHANNEL = 'exec_kill';

const log = componentLogger('data-plane');

export interface KillWatch {
  /** Aborted when a kill is asked for. */
  readonly signal: AbortSignal;
  /** The command is over: stop watching. */
  release(): void;
}

export class ExecKills {
  private readonly running = new Map<string, AbortController>();
  private readonly listener: EventListener;
  private unsubscribe: Promise<() => void> | undefined;

  constructor(private readonly pool: pg.Pool) {
    this.listener = new EventListener({
      connection: listenerConnectionConfig(pool),
      channel: EXEC_KILL_CHANNEL,
      idleCloseMs: 5000,
      log: (msg) => log.warn(msg),
    });
  }

  /** Watches one command; a kill asked for before the watch began is honoured too. */
  async watch(sandboxId: string, execId: string): Promise<KillWatch> {
    const key = `${sandboxId} ${execId}`;
    const controller = new AbortController();
    this.running.set(key, controller);
    this.unsubscribe ??= this.listener.subscribe((payload) => this.heard(payload));
    await this.unsubscribe;
    await this.recheck([key]);
    return {
      signal: controller.signal,
      release: () => {
        if (this.running.get(key) === controller) this.running.delete(key);
      },
    };
  }

  async close(): Promise<void> {
    await this.listener.close();
  }

  private heard(payload: string): void {
    // Notifications sent while the connection was down are lost: ask the registry instead.
    if (payload === RECONNECTED) void this.recheck([...this.running.keys()]);
    else this.kill(payload);
  }

  private kill(key: string): void {
    const controller = this.running.get(key);
    if (controller && !controller.signal.aborted) controller.abort(new Error('killed on request'));
  }

  private async recheck(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const pairs = keys.map((k) => k.split(' '));
    try {
      const { rows } = await this.pool.query<{ key: string }>(
        `SELECT sandbox_id || ' ' || exec_id AS key FROM execs
          WHERE (sandbox_id, exec_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND kill_requested`,
        [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
      );
      for (const { key } of rows) this.kill(key);
    } catch (err) {
      log.warn({ error: (err as Error).message }, 'could not check for kills (Temporal cancellation still applies)');
    }
  }
}
