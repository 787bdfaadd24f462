// What the API answers with, as zod schemas for the document only (nothing validates responses).
// shapeOf<T>() ties each one to the TypeScript type the code returns: if they drift apart, tsc fails.
import './extend-zod';
import { z } from 'zod';
import type { SandboxEventRow, SandboxRow } from '../../registry/sandboxes';
import type { SessionStatus as SessionStatusType } from '../../workflows/messages';
import type { ReaperItem } from '../../workflows/reaper';
import { SANDBOX_STATES } from '../../workflows/states';
import type {
  ExecOutput as ExecOutputType,
  JobStatus as JobStatusType,
  RenewLeaseResult as RenewLeaseResultType,
  SandboxStatus as SandboxStatusType,
} from '../../workflows/types';
import { limitsSchema } from '../limits';
import { shapeOf } from './common';

const isoTime = z.string().openapi({ format: 'date-time', example: '2025-01-01T12:00:00.000Z' });
const labels = z.record(z.string()).openapi({ example: { team: 'agents' } });

export const SandboxState = z.enum(SANDBOX_STATES).openapi('SandboxState');
const AppliedLimits = limitsSchema.openapi('Limits');

export const ExecOutput = shapeOf<ExecOutputType>()(
  z.object({
    exitCode: z.number().int(),
    stdout: z.string(),
    stderr: z.string(),
    stdoutBase64: z.string().optional().openapi({ description: 'The exact bytes, only when stdout is not UTF-8' }),
    stderrBase64: z.string().optional().openapi({ description: 'The exact bytes, only when stderr is not UTF-8' }),
    durationMs: z.number(),
    timedOut: z.boolean(),
  }),
).openapi('ExecOutput');

const JobStep = ExecOutput.extend({ command: z.array(z.string()) }).openapi('JobStep');
const JobState = z.enum(['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'TIMEOUT']).openapi('JobState');

const JobStatus = shapeOf<JobStatusType>()(
  z.object({ state: JobState, steps: z.array(JobStep), error: z.string().optional() }),
).openapi('JobStatus');

const sandboxFields = {
  id: z.string().openapi({ example: 'sbx-1a2b3c4d' }),
  owner: z.string(),
  state: SandboxState,
  driver: z.string().openapi({ example: 'process' }),
  template: z.string().optional(),
  labels,
  sessionId: z.string().optional(),
  isolation: z.string().optional().openapi({ description: 'How the driver isolates this sandbox' }),
  limits: AppliedLimits.optional().openapi({ description: 'The limits the driver enforced' }),
  createdAt: isoTime,
  expiresAt: isoTime.optional().openapi({ description: 'When the lease ends unless renewed' }),
  maxExpiresAt: isoTime.openapi({ description: 'The latest any renewal can take the lease (maxLifetimeSeconds)' }),
  destroyReason: z.string().optional(),
  error: z.string().optional(),
  errorCode: z.string().optional().openapi({ description: 'Failure type of a permanent create error, e.g. bad_spec' }),
  job: JobStatus.optional(),
};

export const Sandbox = shapeOf<SandboxStatusType>()(z.object(sandboxFields)).openapi('Sandbox');

const SandboxRecord = shapeOf<SandboxRow>()(z.object({ ...sandboxFields, updatedAt: isoTime })).openapi(
  'SandboxRecord',
  { description: 'A sandbox as the registry keeps it' },
);

export const SandboxPage = z
  .object({
    items: z.array(SandboxRecord),
    nextCursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null at the end' }),
  })
  .openapi('SandboxPage');

const SandboxEvent = shapeOf<SandboxEventRow>()(
  z.object({
    id: z.string().openapi({ description: 'The global event id (a decimal integer): Last-Event-ID resumes after it' }),
    seq: z.number().int(),
    from: SandboxState.nullable(),
    to: SandboxState,
    reason: z.string(),
    at: isoTime,
  }),
).openapi('SandboxEvent');
export const SandboxEvents = z.object({ items: z.array(SandboxEvent) }).openapi('SandboxEvents');

/** registry/execs.ts listExecs (its rows are untyped: kept by hand). */
export const ExecRecord = z
  .object({
    execId: z.string(),
    command: z.array(z.string()),
    envNames: z.array(z.string()).openapi({ description: 'Env values are secrets: only their names are kept' }),
    exitCode: z.number().int().nullable(),
    stdout: z.string().openapi({ description: 'At most 64 KiB kept' }),
    stderr: z.string(),
    stdoutBase64: z.string().optional(),
    stderrBase64: z.string().optional(),
    timedOut: z.boolean(),
    error: z.string().nullable(),
    startedAt: isoTime,
    finishedAt: isoTime.nullable().openapi({ description: 'null while the command runs' }),
    durationMs: z.number().int().nullable(),
    mode: z.enum(['wait', 'stream', 'background']).openapi({ description: 'How the exec was asked for' }),
    state: z.enum(['running', 'exited', 'killed', 'failed']).openapi({
      description: 'running until finishedAt; killed on request; failed: it could not run to its end (see error)',
    }),
  })
  .openapi('ExecRecord');
export const ExecRecords = z.object({ items: z.array(ExecRecord) }).openapi('ExecRecords');

export const RenewLeaseResult = shapeOf<RenewLeaseResultType>()(
  z.object({
    id: z.string(),
    expiresAt: isoTime,
    capped: z.boolean().openapi({ description: 'True when maxLifetimeSeconds cut the extension short' }),
  }),
).openapi('RenewLeaseResult');

export const RenewAccepted = z.object({ id: z.string(), accepted: z.literal(true) }).openapi('RenewAccepted');

/** api/sandboxes/destroy.ts forceDestroy. */
export const ForcedDestroy = z
  .object({
    id: z.string(),
    state: z.literal('DESTROYED'),
    destroyReason: z.string(),
    vmExisted: z.boolean(),
  })
  .openapi('ForcedDestroy');

export const BulkDestroyResult = z
  .object({
    count: z.number().int(),
    failed: z.number().int(),
    items: z.array(
      z.union([
        z.object({ id: z.string(), ok: z.literal(true), state: SandboxState }),
        z.object({ id: z.string(), ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
      ]),
    ),
  })
  .openapi('BulkDestroyResult');

const DriftKind = z
  .enum(['orphan_vm', 'closed_workflow_row', 'vm_lost', 'overdue', 'session_gone'])
  .openapi('DriftKind');
const ReaperItemSchema = shapeOf<ReaperItem>()(z.object({ id: z.string(), drift: DriftKind, action: z.string() }));

/** What POST /v1/sandboxes/prune picks from the reaper's report. */
export const PruneReport = z
  .object({
    count: z.number().int(),
    dryRun: z.boolean(),
    counts: z.record(DriftKind, z.number().int()),
    items: z.array(ReaperItemSchema),
    runId: z.number().int().optional().openapi({ description: 'The reaper_runs row (not on a dry run)' }),
    deferred: z
      .number()
      .int()
      .optional()
      .openapi({ description: 'Drifts past the 2,000 one run fixes: left for the next run' }),
  })
  .openapi('PruneReport');

export const Session = shapeOf<SessionStatusType>()(
  z.object({
    id: z.string().openapi({ example: 'ses-1a2b3c4d' }),
    owner: z.string().optional(),
    state: z.enum(['ACTIVE', 'ENDED']),
    heartbeatTimeoutSeconds: z.number().int(),
    deadline: isoTime.openapi({ description: 'When the session ends unless a heartbeat arrives first' }),
    sandboxes: z.array(z.string()),
    endReason: z.string().optional(),
  }),
).openapi('Session');

/** api/jobs.ts jobView. */
export const Job = z
  .object({
    id: z.string(),
    sandboxId: z.string().openapi({ description: 'A job’s id is its sandbox’s id' }),
    owner: z.string(),
    state: JobState,
    steps: z.array(JobStep),
    error: z.string().optional(),
    sandboxState: SandboxState,
    createdAt: isoTime,
    expiresAt: isoTime.optional(),
  })
  .openapi('Job');
