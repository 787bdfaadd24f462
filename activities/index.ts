// Activities, built from their dependencies so tests inject real ones without globals.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { HypervisorError } from '../hypervisors/errors';
import type { HypervisorSet } from '../hypervisors/index';
import type { OpContext } from '../hypervisors/types';
import { markDestroyed, recordExecEnd, recordExecStart, recordTransition } from '../registry/sandboxes';
import { createReaperActivities } from './reaper';
import type { ExecInput, ExecOutput, TransitionEvent } from '../workflows/types';

export interface ActivityDeps {
  pool: pg.Pool;
  hypervisors: HypervisorSet;
  /** For the reaper and sessions: visibility, describe, signal, terminate. */
  client: Client;
  taskQueue: string;
}

interface Target {
  id: string;
  driver: string;
}

export function createActivities(deps: ActivityDeps) {
  const { pool, hypervisors } = deps;
  return {
    ...createReaperActivities(deps),
    async recordTransition(event: TransitionEvent): Promise<void> {
      await recordTransition(pool, event);
    },

    /** For destroys that happen outside the sandbox's own workflow (force-destroy, reaper). */
    async markDestroyed(req: Target & { reason: string }): Promise<boolean> {
      return markDestroyed(pool, req.id, req.reason, req.driver);
    },

    async createSandbox(req: Target & { template?: string; labels: Record<string, string> }) {
      const driver = hypervisor(hypervisors, req.driver);
      const info = await permanentAware(() => driver.create({ id: req.id, template: req.template, labels: req.labels }, opContext()));
      return { isolation: info.isolation, details: info.details };
    },

    async waitSandboxReady(req: Target & { timeoutSeconds: number }): Promise<void> {
      const driver = hypervisor(hypervisors, req.driver);
      await permanentAware(() => driver.waitReady(req.id, req.timeoutSeconds * 1000, opContext()));
    },

    async execInSandbox(req: Target & { execId?: string; input: ExecInput }): Promise<ExecOutput> {
      const driver = hypervisor(hypervisors, req.driver);
      const execId = req.execId ?? `${Context.current().info.activityId}-${Date.now()}`;
      await recordExecStart(pool, req.id, execId, req.input.command);
      try {
        const raw = await permanentAware(() => driver.exec(req.id, req.input, opContext()));
        await recordExecEnd(pool, req.id, execId, raw);
        // Results travel through workflow history (2 MB per payload): cap what the caller gets back.
        return { ...raw, stdout: capOutput(raw.stdout), stderr: capOutput(raw.stderr) };
      } catch (err) {
        await recordExecEnd(pool, req.id, execId, { error: (err as Error).message });
        throw err;
      }
    },

    async stopSandbox(req: Target): Promise<void> {
      await permanentAware(() => hypervisor(hypervisors, req.driver).stop(req.id, opContext()));
    },

    async startSandbox(req: Target): Promise<void> {
      await permanentAware(() => hypervisor(hypervisors, req.driver).start(req.id, opContext()));
    },

    /** "Not found" counts as destroyed; anything else is retried by the workflow forever. */
    async destroySandbox(req: Target): Promise<{ existed: boolean }> {
      const driver = hypervisor(hypervisors, req.driver);
      return whileAlive(() => driver.destroy(req.id, opContext()));
    },
  };
}

const EXEC_OUTPUT_CAP = 256 * 1024;

function capOutput(text: string): string {
  if (Buffer.byteLength(text) <= EXEC_OUTPUT_CAP) return text;
  return `${Buffer.from(text).subarray(0, EXEC_OUTPUT_CAP).toString()}\n…[truncated at ${EXEC_OUTPUT_CAP} bytes]`;
}

function hypervisor(set: HypervisorSet, name: string) {
  if (!set.has(name)) {
    // Retryable on purpose: another worker (on the same task queue) may have this driver enabled.
    throw ApplicationFailure.retryable(`driver '${name}' is not enabled on this worker (enabled: ${set.names.join(', ')})`, 'DriverNotEnabled');
  }
  return set.get(name);
}

/** Driver errors marked permanent (bad spec, not ready, not found) must not be retried. */
async function permanentAware<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HypervisorError && err.permanent) {
      throw ApplicationFailure.nonRetryable(err.message, err.code);
    }
    throw err;
  }
}

/**
 * Heartbeats every second while fn runs, whatever the driver reports: the heartbeat then means
 * "this worker is alive", so a destroy lost with a crashed worker is retried after a short
 * heartbeat timeout instead of a long one sized for the slowest driver.
 */
async function whileAlive<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const ticker = setInterval(() => ctx.heartbeat(), 1000);
  try {
    return await fn();
  } finally {
    clearInterval(ticker);
  }
}

/** Heartbeats carry progress; cancellation reaches the driver through the activity's signal. */
function opContext(): OpContext {
  const ctx = Context.current();
  return { signal: ctx.cancellationSignal, progress: (detail) => ctx.heartbeat(detail) };
}
