// Activities, built from their dependencies so tests inject real ones without globals.
import { Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type pg from 'pg';
import type { HypervisorSet } from '../hypervisors/index';
import type { SandboxLimits } from '../hypervisors/types';
import {
  recordExecEnd,
  recordExecInterrupted,
  recordExecOutcome,
  recordExecStart,
  type ExecRecord,
} from '../registry/execs';
import { markDestroyed, recordTransition, recordTransitions } from '../registry/sandboxes';
import { hypervisor, opContext, permanentAware, whileAlive } from './driver-call';
import { ExecKills } from './exec-kills';
import { createFileActivities } from './files';
import { OutputRecorder } from './output-recorder';
import { EXIT_KILLED } from '../hypervisors/guest/contract';
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
  /** Kills of streamed and background commands (one listener per worker process; closed by its owner). */
  execKills?: ExecKills;
}

interface Target {
  id: string;
  driver: string;
}

export function createActivities(deps: ActivityDeps) {
  const { pool, hypervisors } = deps;
  // Made here when the caller gives none (tests): its listener then closes itself when idle.
  const kills = deps.execKills ?? new ExecKills(pool);
  return {
    ...countReaperWork(createReaperActivities(deps)),
    ...createWebhookActivities(deps),
    ...createFileActivities(deps),
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

    /** Why a streamed or background command ended, when the workflow knows better than the command. */
    async recordExecOutcome(req: { id: string; execId: string; killRequested?: boolean; error?: string }) {
      await recordExecOutcome(pool, req.id, req.execId, req);
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
      // Alive from the first moment to the last: under load the registry writes around the command
      // (its start, the kill watch, the output's drain, its end) can wait on the pool for longer
      // than the heartbeat timeout, which would call the worker lost (seen at 1,000 tickers).
      return whileAlive(async () => {
        const driver = hypervisor(hypervisors, req.driver);
        const { input } = req;
        const streamed = Boolean(input.stream || input.background);
        const record: ExecRecord = {
          sandboxId: req.id,
          execId: input.execId ?? req.execId ?? `${Context.current().info.activityId}-${Date.now()}`,
          command: input.command,
          envNames: Object.keys(input.env ?? {}),
          startedAt: new Date().toISOString(),
          mode: input.background ? 'background' : input.stream ? 'stream' : 'wait',
        };
        await recordExecStart(pool, record).catch(() => {});
        const recorder = streamed ? new OutputRecorder(pool, req.id, record.execId) : null;
        const kill = streamed ? await kills.watch(req.id, record.execId) : null;
        const started = Date.now();
        const ctx = opContext();
        if (kill) ctx.signal = ctx.signal ? AbortSignal.any([ctx.signal, kill.signal]) : kill.signal;
        const request = {
          command: input.command,
          timeoutSeconds: input.timeoutSeconds,
          env: input.env,
          ...(input.stdinBase64 !== undefined ? { stdin: Buffer.from(input.stdinBase64, 'base64') } : {}),
          ...(recorder ? { onStart: recorder.attach } : {}),
        };
        let raw: ExecOutput;
        try {
          raw = await permanentAware(() =>
            recorder
              ? driver.execStream(req.id, request, recorder.sink, ctx)
              : request.stdin // only the streaming path takes stdin; the result has the output anyway
                ? driver.execStream(req.id, request, () => {}, ctx)
                : driver.exec(req.id, request, ctx),
          );
        } catch (err) {
          await recorder?.drain();
          // Killed on request (Temporal's cancellation may have come too, as the fallback): an end like
          // SIGKILL's, recorded as killed, whatever words the driver's abort came with.
          if (!kill?.signal.aborted) {
            await recordExecEnd(pool, record, { error: (err as Error).message }).catch(() => {});
            throw err;
          }
          raw = { exitCode: EXIT_KILLED, stdout: '', stderr: '', durationMs: Date.now() - started, timedOut: false };
        } finally {
          kill?.release();
        }
        // Every chunk is in before the end is: a follower that sees the end has seen all the output.
        await recorder?.drain();
        const recorded = await recordExecEnd(pool, record, raw).then(
          () => true,
          () => false,
        );
        // Results travel through workflow history: every driver caps them (hypervisors/guest/contract.ts);
        // a streamed command's output is in exec_output and the execs row, not in the answer.
        const result = recorder
          ? { ...raw, stdout: '', stderr: '', stdoutBase64: undefined, stderrBase64: undefined }
          : raw;
        return { ...result, unrecorded: recorded ? undefined : record };
      });
    },

    /** A background command's start, written before its update answers (the command's own write is then a no-op). */
    async recordExecStart(record: ExecRecord): Promise<void> {
      await recordExecStart(pool, record);
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
