// Streamed and background commands under way, each in a scope of its own so a kill (killExec)
// cancels that one activity, whose driver then kills the command's whole process tree.
import { CancellationScope } from '@temporalio/workflow';
import { EXIT_KILLED } from '../../hypervisors/guest/contract';
import type { ExecOutput } from '../types';

export class RunningExecs {
  private readonly scopes = new Map<string, CancellationScope>();
  private readonly killed = new Set<string>();
  /** Commands being recorded before they start: a kill meanwhile waits for them to start. */
  readonly starting = new Set<string>();
  /** Background commands still running: the run must not continue as new under them. */
  readonly background = new Set<string>();

  get size(): number {
    return this.scopes.size;
  }

  ids(): string[] {
    return [...this.scopes.keys()];
  }

  has(execId: string): boolean {
    return this.scopes.has(execId);
  }

  /** Runs a command in its own scope; a kill makes it answer EXIT_KILLED rather than fail. */
  async run(execId: string, command: () => Promise<ExecOutput>): Promise<ExecOutput> {
    const scope = new CancellationScope();
    this.scopes.set(execId, scope);
    this.starting.delete(execId);
    const started = Date.now();
    try {
      return await scope.run(command);
    } catch (err) {
      // Asked to die, it did: however its activity ended (cancelled, or the driver's abort), it was killed.
      if (!this.killed.has(execId)) throw err;
      const durationMs = Date.now() - started;
      return { exitCode: EXIT_KILLED, stdout: '', stderr: '', durationMs, timedOut: false };
    } finally {
      this.scopes.delete(execId);
    }
  }

  /** Cancels the command's activity; false when no such command is running. */
  kill(execId: string): boolean {
    const scope = this.scopes.get(execId);
    if (!scope) return false;
    this.killed.add(execId);
    scope.cancel();
    return true;
  }
}
