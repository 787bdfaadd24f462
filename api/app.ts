// The express app: JSON in and out, auth, input hygiene, routes, errors. No lifecycle logic lives here.
import type { PayloadCodec } from '@temporalio/common';
import express from 'express';
import { bearerAuth } from './auth';
import { codecCors, codecRoutes } from './codec-routes';
import { errorHandler, notFoundRoute } from './errors';
import { cleanStrings, utf8BodiesOnly } from './input-hygiene';
import { jobRoutes } from './jobs';
import { openApiRoutes } from './openapi/serve';
import { sandboxRoutes } from './sandboxes/routes';
import type { SandboxService } from './sandboxes/service';
import { sessionRoutes } from './sessions/routes';
import type { SessionService } from './sessions/service';
import type { TokenStore } from './tokens';

export interface AppDeps {
  sandboxes: SandboxService;
  sessions: SessionService;
  reaperGraceSeconds: number;
  tokens: TokenStore;
  /** HOURGLASS_INSECURE_NO_AUTH: without tokens, serve requests addressed to any host. */
  insecureNoAuth?: boolean;
  health?: () => Promise<Record<string, unknown>>;
  /** Serves /v1/codec/{encode,decode} for the Temporal UI (the browser origins it may be called from). */
  codec?: { codec: PayloadCodec; uiOrigins: string[] };
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', async (_req, res) => {
    const checks = (await deps.health?.().catch((err: Error) => ({ error: err.message }))) ?? {};
    const ok = !('error' in checks);
    res.status(ok ? 200 : 503).json({ ok, ...checks });
  });
  // The API description and its docs page are public: they describe the API and hold no data.
  app.use(openApiRoutes());
  if (deps.codec) app.use('/v1/codec', codecCors(deps.codec.uiOrigins));
  app.use(bearerAuth(deps.tokens, { insecure: deps.insecureNoAuth }));
  app.use(utf8BodiesOnly);
  // Batches of encrypted payloads (exec outputs up to 256 KiB each) outgrow the API's 1 MB bodies.
  if (deps.codec) app.use('/v1/codec', express.json({ limit: '16mb' }));
  app.use(express.json({ limit: '1mb' }));
  app.use(cleanStrings);
  if (deps.codec) app.use('/v1/codec', codecRoutes(deps.codec.codec));
  app.use('/v1/sandboxes', sandboxRoutes(deps.sandboxes, { graceSeconds: deps.reaperGraceSeconds }));
  app.use('/v1/sessions', sessionRoutes(deps.sessions));
  app.use('/v1/jobs', jobRoutes(deps.sandboxes));
  app.use(notFoundRoute);
  app.use(errorHandler);
  return app;
}
