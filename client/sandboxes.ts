// Sandboxes: create, read, list, renew, stop/start, destroy, and what they record.
import { seg, type Http } from './http';
import { labelQuery, stateQuery } from './query';
import type {
  CreateSandboxRequest,
  ForcedDestroy,
  ListSandboxesQuery,
  RenewAccepted,
  RenewLeaseResult,
  SandboxEvent,
  SandboxPage,
  SandboxStatus,
} from './types';

const base = (id: string) => `/v1/sandboxes/${seg(id)}`;

/** Creates a sandbox; waits until RUNNING unless `wait: false`. The same idempotency key gives the same sandbox. */
export function createSandbox(
  http: Http,
  body: CreateSandboxRequest,
  opts: { idempotencyKey?: string } = {},
): Promise<SandboxStatus> {
  return http.json('POST', '/v1/sandboxes', { body, headers: { 'idempotency-key': opts.idempotencyKey } });
}

export function getSandbox(http: Http, id: string): Promise<SandboxStatus> {
  return http.json('GET', base(id));
}

/** One page; pass `nextCursor` back as `cursor` for the next. */
export function listSandboxes(http: Http, query: ListSandboxesQuery = {}): Promise<SandboxPage> {
  const { state, label, ...rest } = query;
  return http.json('GET', '/v1/sandboxes', {
    query: { ...rest, state: stateQuery(state), label: labelQuery(label) },
  });
}

/**
 * Ends the lease now (its workflow destroys the sandbox) and answers with the sandbox as it was;
 * `force` destroys directly from any state. `actor`: admins, on whose behalf (recorded in the reason).
 */
export function destroySandbox(
  http: Http,
  id: string,
  opts: { reason?: string; force?: boolean; actor?: string } = {},
): Promise<SandboxStatus | ForcedDestroy> {
  const { actor, ...body } = opts;
  return http.json('POST', `${base(id)}/destroy`, { body, headers: { 'x-hourglass-actor': actor } });
}

/** The lease now ends ttlSeconds from now (capped by maxLifetimeSeconds: see `capped`). */
export function renewLease(
  http: Http,
  id: string,
  ttlSeconds: number,
  opts: { idempotencyKey?: string } = {},
): Promise<RenewLeaseResult> {
  return http.json('POST', `${base(id)}/lease/renew`, {
    body: { ttlSeconds },
    headers: { 'idempotency-key': opts.idempotencyKey },
  });
}

/** Renews by signal: accepted at once, no answer waited for (works while no worker runs). */
export function renewLeaseBySignal(http: Http, id: string, ttlSeconds: number): Promise<RenewAccepted> {
  return http.json('POST', `${base(id)}/lease/renew`, { body: { ttlSeconds, async: true } });
}

export function stopSandbox(http: Http, id: string): Promise<SandboxStatus> {
  return http.json('POST', `${base(id)}/stop`);
}

export function startSandbox(http: Http, id: string): Promise<SandboxStatus> {
  return http.json('POST', `${base(id)}/start`);
}

/** Its state transitions, oldest first. */
export function sandboxEvents(http: Http, id: string): Promise<{ items: SandboxEvent[] }> {
  return http.json('GET', `${base(id)}/events`);
}
