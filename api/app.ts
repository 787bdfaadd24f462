// The express app: JSON in and out, auth, routes, errors. No lifecycle logic lives here.
import express from 'express';
import { bearerAuth } from './auth';
import { errorHandler, notFoundRoute } from './errors';
import type { SandboxService } from './sandbox-service';
import { jobRoutes } from './jobs';
import type { SessionService } from './session-service';
import { sandboxRoutes } from './sandboxes';
import { sessionRoutes } from './sessions';

export interface AppDeps {
  sandboxes: SandboxService;
  sessions: SessionService;
  reaperGraceSeconds: number;
  apiToken?: string;
  health?: () => Promise<Record<string, unknown>>;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.use(bearerAuth(deps.apiToken));
  app.get('/healthz', async (_req, res) => {
    const checks = (await deps.health?.().catch((err: Error) => ({ error: err.message }))) ?? {};
    const ok = !('error' in checks);
    res.status(ok ? 200 : 503).json({ ok, ...checks });
  });
  app.use('/v1/sandboxes', sandboxRoutes(deps.sandboxes, { graceSeconds: deps.reaperGraceSeconds }));
  app.use('/v1/sessions', sessionRoutes(deps.sessions));
  app.use('/v1/jobs', jobRoutes(deps.sandboxes));
  app.use(notFoundRoute);
  app.use(errorHandler);
  return app;
}
