// Request logs (pino-http): one line per request, with its id (also sent back as X-Request-Id) and
// the sandbox its path names; never its headers (the bearer token) or its body (commands, payloads).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import { componentLogger } from '../log/logger';
import { requestIdFor } from '../log/request-id';
import { ID_PATTERN } from './schemas';

// /v1/sandboxes/prune and /v1/sandboxes/destroy name no sandbox.
const NOT_IDS = new Set(['prune', 'destroy']);
// Jobs are sandboxes: a job's id is its sandbox's.
const SANDBOX_PATH = /^\/v1\/(?:sandboxes|jobs)\/([^/?#]+)/;

/** The sandbox a request path names, if any. */
export function sandboxIdOfPath(path: string): string | undefined {
  const id = SANDBOX_PATH.exec(path)?.[1];
  return id && !NOT_IDS.has(id) && ID_PATTERN.test(id) ? id : undefined;
}

/**
 * A URL for the log. The API takes tokens only from the Authorization header, never the query string;
 * a client that puts one there anyway (hoping it works) must not find it copied into the logs.
 */
export function loggedUrl(url: string): string {
  return url.replace(/([?&](?:access_)?token=)[^&#]*/gi, '$1[redacted]');
}

type Req = IncomingMessage & { originalUrl?: string };
const urlOf = (req: Req) => req.originalUrl ?? req.url ?? '';

function sandboxOf(req: Req, res: ServerResponse): { sandboxId?: string } {
  // A create names its sandbox only in the answer's Location header.
  const location = res.getHeader('location');
  const id = sandboxIdOfPath(urlOf(req)) ?? (typeof location === 'string' ? sandboxIdOfPath(location) : undefined);
  return id ? { sandboxId: id } : {};
}

/** Probes (load balancers, Prometheus) would drown the request log at info. */
const isProbe = (req: Req) => req.method === 'GET' && /^\/(?:healthz|metrics)(?:\?|$)/.test(urlOf(req));

export function requestLog(): RequestHandler {
  const http = pinoHttp<Req, ServerResponse>({
    logger: componentLogger('api'),
    // req.log carries reqId; the line written at the end carries the request and the response too.
    quietReqLogger: true,
    genReqId: (req, res) => {
      const id = requestIdFor(req.headers['x-request-id']);
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customProps: sandboxOf,
    customLogLevel: (req, res, err) => {
      if (err || res.statusCode >= 500) return 'error';
      if (res.statusCode >= 400) return 'warn';
      return isProbe(req) ? 'debug' : 'info';
    },
    customSuccessMessage: (req, res, ms) => `${req.method} ${loggedUrl(urlOf(req))} ${res.statusCode} (${ms} ms)`,
    customErrorMessage: (req, res) => `${req.method} ${loggedUrl(urlOf(req))} ${res.statusCode} failed`,
    serializers: {
      req: (r: { method: string; url: string; remoteAddress?: string }) => ({
        method: r.method,
        url: loggedUrl(r.url),
        remoteAddress: r.remoteAddress,
      }),
      res: (r: { statusCode: number }) => ({ statusCode: r.statusCode }),
    },
  });
  return (req, res, next) => {
    http(req, res);
    // Lines a handler writes about a sandbox carry its id, like the request's own line.
    const { sandboxId } = sandboxOf(req, res);
    if (sandboxId) req.log = req.log.child({ sandboxId });
    next();
  };
}
