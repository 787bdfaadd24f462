// Sessions: a group of sandboxes kept alive by heartbeats; ending one destroys its sandboxes.
import { seg, type Http } from './http';
import type { CreateSessionRequest, SessionStatus } from './types';

const base = (id: string) => `/v1/sessions/${seg(id)}`;

export function createSession(http: Http, body: CreateSessionRequest): Promise<SessionStatus> {
  return http.json('POST', '/v1/sessions', { body });
}

export function getSession(http: Http, id: string): Promise<SessionStatus> {
  return http.json('GET', base(id));
}

/** Pushes the deadline heartbeatTimeoutSeconds into the future. */
export function heartbeatSession(http: Http, id: string): Promise<SessionStatus> {
  return http.json('POST', `${base(id)}/heartbeat`);
}

/** Ends the session: its sandboxes are destroyed. */
export function endSession(http: Http, id: string): Promise<SessionStatus> {
  return http.json('DELETE', base(id));
}
