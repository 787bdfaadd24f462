// The activities of activities/index.ts by the same names and signatures, over an in-memory world
// a test scripts and inspects: the workflows under test cannot tell them from the real ones.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { createActivities } from '../../../activities';
import type { ExecInput, ExecOutput, TransitionEvent } from '../../../workflows/types';

type Activities = ReturnType<typeof createActivities>;

/** What `exec` does, by the command's first word. */
export const commands = {
  /** ['exit', '3'] exits 3. */
  exit: (code: number) => ['exit', String(code)],
  /** Exits 124, timedOut: as a driver reports a command past its timeout. */
  timeout: () => ['timeout'],
  /** The activity fails (the driver could not run it). */
  broken: () => ['broken'],
  /** Waits until the test releases `gate` (or the activity is cancelled). */
  hold: (gate: string) => ['hold', gate],
};

/** A point an activity waits at until the test opens it. */
class Gate {
  opened = false;
  waiting = 0;
  /** A driver that goes on with its work when the activity is cancelled. */
  constructor(readonly ignoresCancel = false) {}
}

export class FakeWorld {
  readonly transitions: TransitionEvent[] = [];
  readonly calls: { activity: string; id: string; input?: unknown }[] = [];
  /** Sandboxes whose create finished and whose destroy has not. */
  readonly vms = new Set<string>();
  /** Creates of these sandbox ids fail for good with this failure type. */
  readonly failCreate = new Map<string, string>();
  private readonly gates = new Map<string, Gate>();
  /**
   * execId → the gate its command holds: recording that exec's kill ends it at once, before the
   * write answers, as the worker's NOTIFY exec_kill listener does.
   */
  readonly killedByNotify = new Map<string, string>();

  /** Makes the activity at gate `name` (`create:<id>`, `stop:<id>`, `start:<id>`, or exec's `hold`) wait. */
  hold(name: string, opts: { ignoresCancel?: boolean } = {}): void {
    this.gates.set(name, new Gate(opts.ignoresCancel));
  }

  release(name: string): void {
    const gate = this.gates.get(name);
    if (gate) gate.opened = true;
  }

  /** True once an activity waits at the gate. */
  isWaiting(name: string): boolean {
    return (this.gates.get(name)?.waiting ?? 0) > 0;
  }

  called(activity: string, id: string): number {
    return this.calls.filter((c) => c.activity === activity && c.id === id).length;
  }

  /** The states a sandbox went through, in order (by the workflow's sequence numbers). */
  states(id: string): string[] {
    return this.transitions
      .filter((e) => e.sandboxId === id)
      .sort((a, b) => a.seq - b.seq)
      .map((e) => e.to);
  }

  /** Waits at gate `name` while heartbeating (so a cancellation arrives), unless no one holds it. */
  private async pass(name: string): Promise<void> {
    const gate = this.gates.get(name);
    if (!gate) return;
    gate.waiting += 1;
    try {
      while (!gate.opened) {
        Context.current().heartbeat();
        const tick = new Promise((r) => setTimeout(r, 20));
        await (gate.ignoresCancel ? tick : Promise.race([Context.current().cancelled, tick]));
      }
    } finally {
      gate.waiting -= 1;
    }
  }

  activities(): Activities {
    const note = (activity: string, id: string, input?: unknown) => this.calls.push({ activity, id, input });
    const unused = async (): Promise<never> => {
      throw ApplicationFailure.nonRetryable('not part of the sandbox workflow tests');
    };
    return {
      recordTransition: async (event: TransitionEvent) => {
        this.transitions.push(event);
      },
      recordTransitions: async (events: TransitionEvent[]) => {
        this.transitions.push(...events);
      },
      markDestroyed: async () => true,
      recordExecInterrupted: async (req: { id: string; execId: string; reason: string }) => {
        note('recordExecInterrupted', req.id, req);
      },
      createSandbox: async (req) => {
        note('createSandbox', req.id, req);
        await this.pass(`create:${req.id}`);
        note('createSandbox:end', req.id);
        const failure = this.failCreate.get(req.id);
        if (failure) throw ApplicationFailure.nonRetryable(`create of ${req.id} failed`, failure);
        this.vms.add(req.id);
        return { isolation: 'fake', limits: req.limits ?? {}, details: {} };
      },
      waitSandboxReady: async (req) => {
        note('waitSandboxReady', req.id, req);
      },
      execInSandbox: async (req: { id: string; driver: string; execId?: string; input: ExecInput }) => {
        const { startToCloseTimeoutMs } = Context.current().info;
        note('execInSandbox', req.id, { ...req.input, startToCloseTimeoutMs });
        const [verb, arg] = req.input.command;
        const out = (exitCode: number, timedOut = false): ExecOutput => ({
          exitCode,
          stdout: `${req.input.command.join(' ')}\n`,
          stderr: '',
          durationMs: 1,
          timedOut,
        });
        if (verb === 'exit') return out(Number(arg));
        if (verb === 'timeout') return out(124, true);
        if (verb === 'broken') throw ApplicationFailure.nonRetryable('the driver could not run it', 'broken');
        if (verb === 'hold') await this.pass(arg!);
        return out(this.vms.has(req.id) ? 0 : 137); // killed with its sandbox
      },
      recordExecEnd: async () => {},
      recordExecStart: async (record) => {
        note('recordExecStart', record.sandboxId, record);
      },
      recordExecOutcome: async (req) => {
        note('recordExecOutcome', req.id, req);
        const gate = req.killRequested ? this.killedByNotify.get(req.execId) : undefined;
        if (!gate) return;
        this.release(gate);
        // The command's activity completes (and reaches the workflow) before this write answers.
        await new Promise((r) => setTimeout(r, 500));
      },
      fileOp: async (req) => {
        note('fileOp', req.id, req.op);
        const { op } = req;
        if (op.path === 'missing') throw ApplicationFailure.nonRetryable(`no such file: ${op.path}`, 'path_not_found');
        if (op.path === 'hold') await this.pass(`files:${req.id}`);
        if (!this.vms.has(req.id)) throw ApplicationFailure.retryable('the sandbox is gone');
        switch (op.op) {
          case 'write':
            return { op: 'write', path: op.path, size: op.size, sha256: op.sha256 };
          case 'read':
            return { op: 'read', path: op.path, kind: 'file', size: 0, sha256: 'e3b0c442' };
          case 'list':
            return { op: 'list', path: op.path, entries: [], truncated: false };
          case 'remove':
            return { op: 'remove', path: op.path, existed: true };
          case 'mkdir':
            return { op: 'mkdir', path: op.path };
        }
      },
      stopSandbox: async (req) => {
        note('stopSandbox', req.id);
        await this.pass(`stop:${req.id}`);
      },
      startSandbox: async (req) => {
        note('startSandbox', req.id);
        await this.pass(`start:${req.id}`);
      },
      destroySandbox: async (req) => {
        note('destroySandbox', req.id);
        return { existed: this.vms.delete(req.id) };
      },
      takeInventory: unused,
      planDrifts: unused,
      fixDrift: unused,
      storeReaperRun: unused,
      pruneDataPlane: unused,
      waitForWebhookEvents: unused,
      deliverWebhook: unused,
      settleWebhookDelivery: unused,
    };
  }
}
