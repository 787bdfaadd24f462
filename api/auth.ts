// Bearer-token auth: every request (but /healthz) is made by a Principal taken from its token,
// never from a header the caller chooses. With no tokens configured, the local user is an admin
// (the runtime refuses to listen beyond loopback that way unless told it is on purpose).
import type { Request, RequestHandler } from 'express';
import { ApiError } from './errors';
import { isLoopbackAuthority, isLoopbackOrigin } from './loopback';
import { LOCAL_ADMIN, type Principal, type TokenStore } from './tokens';

/** Who made each request, set by bearerAuth. */
const principals = new WeakMap<Request, Principal>();

/**
 * `insecure`: HOURGLASS_INSECURE_NO_AUTH, an API without tokens served beyond loopback on purpose.
 * Otherwise an API without tokens answers only requests addressed to loopback, from no web page
 * but a loopback one: a browser on this machine could else be steered to it by any site (DNS
 * rebinding makes evil.example resolve to 127.0.0.1; a form can POST cross-site).
 */
export function bearerAuth(tokens: TokenStore, opts: { insecure?: boolean } = {}): RequestHandler {
  return (req, _res, next) => {
    if (req.path === '/healthz') return next();
    if (!tokens.enabled) {
      if (!opts.insecure) {
        const host = req.get('host') ?? '';
        const origin = req.get('origin');
        if (!isLoopbackAuthority(host)) {
          const why = `auth is off, so only requests addressed to loopback are served (Host: ${printable(host)})`;
          return next(new ApiError(403, 'forbidden', `${why}; configure tokens to serve other names`));
        }
        if (origin !== undefined && !isLoopbackOrigin(origin)) {
          const why = `auth is off, so web pages from ${printable(origin)} may not call this API`;
          return next(new ApiError(403, 'forbidden', `${why}; configure tokens`));
        }
      }
      principals.set(req, LOCAL_ADMIN);
      return next();
    }
    const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
    const principal = given === undefined ? undefined : tokens.authenticate(given);
    if (!principal) {
      return next(new ApiError(401, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer …)'));
    }
    principals.set(req, principal);
    next();
  };
}

export function principalOf(req: Request): Principal {
  const p = principals.get(req);
  if (!p) throw new ApiError(401, 'unauthorized', 'missing bearer token (Authorization: Bearer …)');
  return p;
}

export function requireAdmin(p: Principal, what: string): void {
  if (p.role !== 'admin') {
    throw new ApiError(403, 'forbidden', `${what} needs an admin token (you are ${p.owner}, role ${p.role})`);
  }
}

/** Who asked, for event reasons: the owner; an admin may name whom they act for (X-Hourglass-Actor). */
export function requesterOf(req: Request): string {
  const p = principalOf(req);
  const onBehalf = p.role === 'admin' ? req.get('x-hourglass-actor') : undefined;
  return onBehalf ? `${p.owner} (for ${onBehalf.slice(0, 100)})` : p.owner;
}

const printable = (s: string) => JSON.stringify(s.slice(0, 100));
