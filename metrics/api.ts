// The API's side of metrics: a middleware that counts and times every request by route pattern,
// and the GET /metrics route (admins only when tokens are configured; see README "Metrics").
import type { RequestHandler } from 'express';
import { principalOf, requireAdmin } from '../api/auth';
import { wrap } from '../api/wrap';
import { apiRequestSeconds, apiRequestsTotal } from './definitions';
import { METRICS_CONTENT_TYPE, metricsText } from './exposition';

/** The route label of requests no route took: 404s, and those refused before routing (401, bad JSON …). */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Labels each request with its route pattern (`/v1/sandboxes/:id`), never the raw URL: ids in a label
 * would make a new series per sandbox. Mount before everything else, so refusals are counted too.
 */
export const observeApiRequests: RequestHandler = (req, res, next) => {
  const start = process.hrtime.bigint();
  let route: string | undefined;
  let matched: unknown;
  // Express sets req.route when a route matches, while req.baseUrl is still that route's mount path
  // (routers are mounted at literal paths; the :params are in the routes). When the response ends,
  // an error may have carried the request back out of its router and baseUrl is '' again: read both now.
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => matched,
    set: (value: { path?: unknown } | undefined) => {
      matched = value;
      route = typeof value?.path === 'string' ? routePattern(req.baseUrl, value.path) : undefined;
    },
  });
  res.once('close', () => {
    const labels = { method: req.method, route: route ?? UNMATCHED_ROUTE };
    // A client gone before any answer has no status; a stream (SSE) it closed keeps its 200.
    apiRequestsTotal.inc({ ...labels, status: res.headersSent ? String(res.statusCode) : 'aborted' });
    // A live stream lasts as long as its reader: its lifetime is not a request's latency.
    if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) return;
    apiRequestSeconds.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
  });
  next();
};

/** A mount and its route's path as one pattern: `/v1/sandboxes` + `/` is `/v1/sandboxes` (express ignores it). */
export function routePattern(mount: string, path: string): string {
  return (mount + path).replace(/(.)\/$/, '$1');
}

/** GET /metrics: mounted after bearer auth, so with tokens it needs an admin's; without, loopback only. */
export const metricsRoute = wrap(async (req, res) => {
  requireAdmin(principalOf(req), 'reading metrics');
  res.type(METRICS_CONTENT_TYPE).send(await metricsText());
});
