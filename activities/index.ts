// Activities, built from their dependencies so tests inject real ones without globals.
import { Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { HypervisorError } from '../hypervisors/errors';
import type { HypervisorSet } from '../hypervisors/index';
import type { OpContext, SandboxLimits } from '../hypervisors/types';
import { recordExecEnd, recordExecInterrupted, recordExecStart, type ExecRecord } from '../registry/execs';
import { markDestroyed, recordTransition, recordTransitions } from '../registry/sandboxes';
import { Failure } from '../workflows/failures';
import { countReaperWork } from '../metrics/reaper';
import { observeTransitions } from '../metrics/transitions';
import { createReaperActivities } from './reaper';
import { createWebhookActivities, type WebhookSettings } from './webhooks';
import type { ExecInput, ExecOutput, TransitionEvent } from '../workflows/types';

export interface ActivityDeps {
  pool: pg.Pool;
  hypervisors: HypervisorSet;
  /** For the reaper and sessions: visibility, describe, signal, terminate. */
  client: Client;
  taskQueue: string;
  /** Webhook deliveries: the codec keys that open signing secrets, the address guard, the retry window. */
  webhooks?: WebhookSettings;
}

interface Target {
  id: string;
  driver: string;
}

export function createActivities(deps: ActivityDeps) {
  const { pool, hypervisors } = deps;
  return {
    ...countReaperWork(createReaperActivities(deps)),
    ...createWebhookActivities(deps),
    /** Runs before batched writes; kept for their histories. */
    async recordTransition(event: TransitionEvent): Promise<void> {
      observeTransitions(await recordTransition(pool, event));
    },

    /** A workflow task's transitions, as a local activity (one round trip to PostgreSQL). */
    async recordTransitions(events: TransitionEvent[]): Promise<void> {
      // Only what this call appended: a write run again (a lost task completion) is not timed twice.
      observeTransitions(await recordTransitions(pool, events));
    },

    /** For destroys that happen outside the sandbox's own workflow (force-destroy, reaper). */
    async markDestroyed(req: Target & { reason: string; owner?: string }): Promise<boolean> {
      return markDestroyed(pool, req.id, req.reason, req.driver, req.owner);
    },

    async recordExecInterrupted(req: { id: string; execId: string; reason: string }): Promise<void> {
      await recordExecInterrupted(pool, req.id, req.execId, req.reason);
    },

    async createSandbox(req: Target & { template?: string; labels: Record<string, string>; limits?: SandboxLimits }) {
      const driver = hypervisor(hypervisors, req.driver);
      const spec = { id: req.id, template: req.template, labels: req.labels, limits: req.limits };
      // Heartbeats while it runs: a create the server timed out for silence would be retried
      // beside itself, and two attempts at once made two namespaces for one sandbox.
      const info = await whileAlive(() => permanentAware(() => driver.create(spec, opContext())));
      // Named explicitly: the reaper's and force-destroy's workflow ids are not the sandbox's.
      log.info('sandbox created', { sandboxId: req.id, driver: req.driver });
      return { isolation: info.isolation, limits: info.limits, details: info.details };
    },

    async waitSandboxReady(req: Target & { timeoutSeconds: number }): Promise<void> {
      const driver = hypervisor(hypervisors, req.driver);
      await whileAlive(() => permanentAware(() => driver.waitReady(req.id, req.timeoutSeconds * 1000, opContext())));
    },

    /**
     * Runs a command and records it. A registry that is down does not stop the command: the result
     * says it is unrecorded and the workflow writes it later (its registry writes retry forever).
     */
    async execInSandbox(req: Target & { execId?: string; input: ExecInput }): Promise<ExecActivityResult> {
      const driver = hypervisor(hypervisors, req.driver);
      const record: ExecRecord = {
        sandboxId: req.id,
        execId: req.execId ?? `${Context.current().info.activityId}-${Date.now()}`,
        command: req.input.command,
        envNames: Object.keys(req.input.env ?? {}),
        startedAt: new Date().toISOString(),
      };
      await recordExecStart(pool, record).catch(() => {});
      let raw: ExecOutput;
      try {
        raw = await whileAlive(() => permanentAware(() => driver.exec(req.id, req.input, opContext())));
      } catch (err) {
        await recordExecEnd(pool, record, { error: (err as Error).message }).catch(() => {});
        throw err;
      }
      const recorded = await recordExecEnd(pool, record, raw).then(
        () => true,
        () => false,
      );
      // Results travel through workflow history: every driver caps them (hypervisors/guest/contract.ts).
      return { ...raw, unrecorded: recorded ? undefined : record };
    },

    async recordExecEnd(req: { record: ExecRecord; output: ExecOutput }): Promise<void> {
      await recordExecEnd(pool, req.record, req.output);
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
      const { existed } = await whileAlive(() => driver.destroy(req.id, opContext()));
      log.info('sandbox destroyed', { sandboxId: req.id, driver: req.driver, existed });
      return { existed };
    },
  };
}

/** The command's output, and (only when the registry could not be written) what to record later. */
export type ExecActivityResult = ExecOutput & { unrecorded?: ExecRecord };

function hypervisor(set: HypervisorSet, name: string) {
  if (!set.has(name)) {
    // Retryable on purpose: another worker (on the same task queue) may have this driver enabled.
    const message = `driver '${name}' is not enabled on this worker (enabled: ${set.names.join(', ')})`;
    throw ApplicationFailure.retryable(message, Failure.DriverNotEnabled);
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
  if (ctx.info.isLocal) return fn(); // a local activity lives inside its workflow task: no heartbeats
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
  if (ctx.info.isLocal) return { signal: ctx.cancellationSignal, progress: () => {} };
  return { signal: ctx.cancellationSignal, progress: (detail) => ctx.heartbeat(detail) };
}
