// The client's request and answer types. Requests are the input side of the zod schemas the API
// validates with; answers are the shared TypeScript types (or the OpenAPI schemas shapeOf ties to
// them). Type imports only: the client pulls no server code in at run time.
import type { z } from 'zod';
import type * as responses from '../api/openapi/responses';
import type { FeedEvent } from '../registry/event-feed';
import type { ExecState } from '../registry/execs';
import type { eventsQuery } from '../api/events/schemas';
import type {
  bulkDestroyBody,
  createJobBody,
  createSandboxBody,
  createSessionBody,
  destroyBody,
  execRequest,
  listQuery,
  pruneBody,
} from '../api/schemas';
import type {
  CreatedWebhookView,
  DeliveryView,
  WebhookView,
  createWebhookBody,
  deliveriesQuery,
} from '../api/webhooks/schemas';
import type { FileEntry } from '../hypervisors/types';
import type { SessionStatus } from '../workflows/messages';
import type { ExecMode, ExecOutput, FileOpResult, RenewLeaseResult, SandboxStatus } from '../workflows/types';

export type { ExecMode, ExecOutput, ExecState, FeedEvent, FileEntry, RenewLeaseResult, SandboxStatus, SessionStatus };

// ── requests ────────────────────────────────────────────────────────────────
export type CreateSandboxRequest = z.input<typeof createSandboxBody>;
export type ExecRequest = z.input<typeof execRequest>;
/** A streamed or background exec: the mode is the method's, not a field. */
export type CommandRequest = Omit<ExecRequest, 'stream' | 'background'>;
export type DestroyRequest = NonNullable<z.input<typeof destroyBody>>;
export type BulkDestroyRequest = z.input<typeof bulkDestroyBody>;
export type PruneRequest = NonNullable<z.input<typeof pruneBody>>;
export type CreateSessionRequest = z.input<typeof createSessionBody>;
export type CreateJobRequest = z.input<typeof createJobBody>;
export type CreateWebhookRequest = z.input<typeof createWebhookBody>;
export type DeliveriesQuery = z.input<typeof deliveriesQuery>;

/** listQuery as a caller writes it: states and labels as lists or the API's own comma/`k=v` strings. */
export type ListSandboxesQuery = Omit<z.input<typeof listQuery>, 'label'> & {
  label?: string | string[] | Record<string, string>;
};
export type EventsQuery = Omit<z.input<typeof eventsQuery>, 'follow' | 'label'> & {
  label?: string | string[] | Record<string, string>;
};

// ── answers ─────────────────────────────────────────────────────────────────
export type SandboxPage = z.infer<typeof responses.SandboxPage>;
export type SandboxRecord = SandboxPage['items'][number];
export type SandboxEvent = z.infer<typeof responses.SandboxEvents>['items'][number];
/** One exec as GET /execs lists it. */
export type ExecRecord = z.infer<typeof responses.ExecRecord>;
export type RenewAccepted = z.infer<typeof responses.RenewAccepted>;
export type ForcedDestroy = z.infer<typeof responses.ForcedDestroy>;
export type BulkDestroyResult = z.infer<typeof responses.BulkDestroyResult>;
export type PruneReport = z.infer<typeof responses.PruneReport>;
export type Job = z.infer<typeof responses.Job>;
export type Webhook = z.infer<typeof WebhookView>;
export type CreatedWebhook = z.infer<typeof CreatedWebhookView>;
export type WebhookDelivery = z.infer<typeof DeliveryView>;
export interface EventPage {
  items: FeedEvent[];
  nextAfter: string;
}

/** 202 of a background exec. */
export interface BackgroundExec {
  execId: string;
  sandboxId: string;
  state: 'running';
}

/** A page of an exec's output (GET /execs/:execId/output without follow). */
export interface ExecOutputPage {
  items: ({ seq: number; stream: 'stdout' | 'stderr' } & ({ text: string } | { base64: string }))[];
  nextAfter: number;
  finished: boolean;
}

/** What a streamed or followed exec yields, in order; exactly one exit or error ends it. */
export type ExecEvent =
  | { type: 'start'; execId: string; sandboxId?: string }
  | { type: 'stdout' | 'stderr'; seq: number; data: Buffer }
  | { type: 'notice'; message: string }
  | { type: 'exit'; execId: string; exitCode: number; durationMs: number; timedOut: boolean }
  | { type: 'error'; error: { code: string; message: string; details?: unknown } };

/** What the workflow's file operation answers, as the API passes it on (without the op). */
type FileAnswer<Op extends FileOpResult['op']> = Omit<Extract<FileOpResult, { op: Op }>, 'op'>;
export type WriteFileResult = FileAnswer<'write'>;
export type FileListing = FileAnswer<'list'>;
export type RemovedFile = FileAnswer<'remove'>;
export type MadeDirectory = FileAnswer<'mkdir'>;
export type FileKind = FileAnswer<'read'>['kind'];
