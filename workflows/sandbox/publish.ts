// What the world sees of a sandbox run: its rows in the registry (PostgreSQL, a read model) and
// its state in the Temporal UI (search attributes, current details). Nothing here decides anything.
import { CancellationScope, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { SandboxEndReason, SandboxExpiresAt, SandboxState as SandboxStateKey } from '../search-attributes';
import type { SandboxState } from '../states';
import type { TransitionEvent } from '../types';
import { registry, registryLocal } from './activity-options';
import type { SandboxRun } from './run';

export class Publisher {
  /** The registry's sequence number of the last transition: it goes on across continue-as-new. */
  seq: number;
  private readonly pending: Promise<unknown>[] = [];
  private inFlight = 0;
  private unsent: TransitionEvent[] = [];
  private uiPending = false;

  constructor(
    private readonly run: SandboxRun,
    seq: number,
  ) {
    this.seq = seq;
  }

  /** No registry write is under way. */
  get idle(): boolean {
    return this.inFlight === 0;
  }

  /** Resolves once every write started so far is done. */
  written(): Promise<unknown> {
    return Promise.all(this.pending);
  }

  showInUi(): void {
    const run = this.run;
    const upsert = () =>
      upsertSearchAttributes([
        { key: SandboxStateKey, value: run.state },
        // Before RUNNING: the latest it may live, so the reaper also catches a boot that is stuck.
        { key: SandboxExpiresAt, value: new Date(run.lease.expiresAt) },
        // Once the sandbox goes: why, so the list shows it without opening the workflow.
        ...(run.showEndReason && run.endReason ? [{ key: SandboxEndReason, value: run.endReason }] : []),
      ]);
    if (!run.lean) {
      upsert(); // runs from before lean-history-v1: an upsert per change
    } else if (!this.uiPending) {
      // One upsert per activation, with the state it ends in (EXPIRED → DESTROYING is one event).
      this.uiPending = true;
      void (async () => {
        await Promise.resolve(); // the rest of this synchronous run joins in
        this.uiPending = false;
        upsert();
      })();
    }
    const expiry = run.lease.started ? `, lease until ${new Date(run.lease.expiresAt).toISOString()}` : '';
    setCurrentDetails(`**${run.state}**${expiry}${run.destroyReason ? ` — ${run.destroyReason}` : ''}`);
  }

  /** Records the run's state (a transition from `from`, or the same state with news) in the registry. */
  record(from: SandboxState | null, reason: string): void {
    this.seq += 1;
    const at = new Date().toISOString();
    const event: TransitionEvent = {
      sandboxId: this.run.id,
      seq: this.seq,
      from,
      to: this.run.state,
      reason,
      at,
      sandbox: this.run.status(),
    };
    if (!this.run.lean) {
      this.write(() => registry.recordTransition(event)); // runs from before lean-history-v1
      return;
    }
    this.unsent.push(event);
    if (this.unsent.length > 1) return; // a batch is already waiting for more
    this.write(async () => {
      // One hop: whatever this synchronous run records joins the batch. Not more: the SDK captures
      // a stack trace for every promise a workflow makes (a sixth of the workflow thread's time).
      await Promise.resolve();
      const batch = this.unsent;
      this.unsent = [];
      await registryLocal.recordTransitions(batch);
    });
  }

  /**
   * Starts a registry write that the run awaits before it closes. Never in the caller's scope: a
   * transition made inside the cancelled provisioning scope (a destroy arrived while create ran,
   * then create succeeded → BOOTING) would schedule its write there, which rejects at once with
   * nobody awaiting it yet: an unhandled rejection that failed every workflow task from then on,
   * so the created VM was never destroyed.
   */
  write(fn: () => Promise<unknown>): void {
    this.inFlight += 1;
    this.pending.push(
      CancellationScope.nonCancellable(fn).finally(() => {
        this.inFlight -= 1;
      }),
    );
  }
}
