// Optional bearer-token auth (HOURGLASS_API_TOKEN). /healthz stays open for load balancers.
import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError } from './errors';

export function bearerAuth(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!token || req.path === '/healthz') return next();
    const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
    const ok = given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));
    next(ok ? undefined : new ApiError(401, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer …)'));
  };
}
