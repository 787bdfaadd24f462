// Calls on many sandboxes at once (bulk destroy; prune: admins) and the service's health.
import type { Http } from './http';
import type { BulkDestroyRequest, BulkDestroyResult, PruneReport, PruneRequest } from './types';

/** Destroys the sandboxes named by ids and/or a label filter (`key=value`); one result each. */
export function bulkDestroy(
  http: Http,
  body: BulkDestroyRequest,
  opts: { actor?: string } = {},
): Promise<BulkDestroyResult> {
  return http.json('POST', '/v1/sandboxes/destroy', { body, headers: { 'x-hourglass-actor': opts.actor } });
}

/** Runs the reaper now (admins): every drift between hypervisors, registry and Temporal, fixed or listed. */
export function prune(http: Http, body: PruneRequest = {}): Promise<PruneReport> {
  return http.json('POST', '/v1/sandboxes/prune', { body });
}

/** GET /healthz: `ok` and the checks; a 503 (unhealthy) throws like any refusal. */
export function health(http: Http): Promise<{ ok: boolean } & Record<string, unknown>> {
  return http.json('GET', '/healthz');
}
