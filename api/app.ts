// The express app: JSON in and out, auth, input hygiene, routes, errors. No lifecycle logic lives here.
import type { PayloadCodec } from '@temporalio/common';
import express from 'express';
import { bearerAuth } from './auth';
import { codecCors, codecRoutes } from './codec-routes';
import { errorHandler, notFoundRoute } from './errors';
import { EventHub } from './events/hub';
import { eventRoutes } from './events/routes';
import { ExecOutputHub } from './execs/output-hub';
import { execRoutes } from './execs/routes';
import { fileRoutes } from './files/routes';
import { cleanStrings, utf8BodiesOnly } from './input-hygiene';
import { jobRoutes } from './jobs';
import { metricsRoute, observeApiRequests } from '../metrics/api';
import { openApiRoutes } from './openapi/serve';
import { requestLog } from './request-log';
import { sandboxRoutes } from './sandboxes/routes';
import type { SandboxService } from './sandboxes/service';
import { sessionRoutes } from './sessions/routes';
import type { SessionService } from './sessions/service';
import type { TokenStore } from './tokens';
import { webhookRoutes } from './webhooks/routes';
import type { WebhookService } from './webhooks/service';

export interface AppDeps {
  sandboxes: SandboxService;
  sessions: SessionService;
  webhooks: WebhookService;
  reaperGraceSeconds: number;
  tokens: TokenStore;
  /** HOURGLASS_INSECURE_NO_AUTH: without tokens, serve requests addressed to any host. */
  insecureNoAuth?: boolean;
  health?: () => Promise<Record<string, unknown>>;
  /** Serves /v1/codec/{encode,decode} for the Temporal UI (the browser origins it may be called from). */
  codec?: { codec: PayloadCodec; uiOrigins: string[] };
  /** Live event streams (one hub per process; close() it before the server). Default: one on the registry pool. */
  events?: EventHub;
  /** Exec output streams (one LISTEN per process; close() it before the server). Default: one on the registry pool. */
  execOutput?: ExecOutputHub;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // First: every request, even one refused by auth, gets an id and a log line.
  app.use(requestLog());
  // Counted by route pattern and status, refusals included.
  app.use(observeApiRequests);
  app.get('/healthz', async (_req, res) => {
    const checks = (await deps.health?.().catch((err: Error) => ({ error: err.message }))) ?? {};
    const ok = !('error' in checks);
    res.status(ok ? 200 : 503).json({ ok, ...checks });
  });
  // The API description and its docs page are public: they describe the API and hold no data.
  app.use(openApiRoutes());
  if (deps.codec) app.use('/v1/codec', codecCors(deps.codec.uiOrigins));
  app.use(bearerAuth(deps.tokens, { insecure: deps.insecureNoAuth }));
  // After auth on purpose: with tokens, only an admin reads metrics; without, loopback only (README).
  app.get('/metrics', metricsRoute);
  // Before the body parsers: an upload's body is raw bytes, streamed into the registry.
  app.use('/v1/sandboxes', fileRoutes(deps.sandboxes.context));
  app.use(utf8BodiesOnly);
  // Batches of encrypted payloads (exec outputs up to 256 KiB each) outgrow the API's 1 MB bodies.
  if (deps.codec) app.use('/v1/codec', express.json({ limit: '16mb' }));
  app.use(express.json({ limit: '1mb' }));
  app.use(cleanStrings);
  if (deps.codec) app.use('/v1/codec', codecRoutes(deps.codec.codec));
  // Before the sandbox routes: GET /v1/sandboxes/:id/events without follow falls through to them.
  app.use('/v1', eventRoutes(deps.events ?? new EventHub(deps.sandboxes.registryPool), deps.sandboxes));
  app.use(
    '/v1/sandboxes',
    execRoutes(deps.sandboxes.context, deps.execOutput ?? new ExecOutputHub(deps.sandboxes.registryPool)),
  );
  app.use('/v1/sandboxes', sandboxRoutes(deps.sandboxes, { graceSeconds: deps.reaperGraceSeconds }));
  app.use('/v1/sessions', sessionRoutes(deps.sessions));
  app.use('/v1/jobs', jobRoutes(deps.sandboxes));
  app.use('/v1/webhooks', webhookRoutes(deps.webhooks));
  app.use(notFoundRoute);
  app.use(errorHandler);
  return app;
}
