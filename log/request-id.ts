// The request id: the caller's X-Request-Id when it is short and harmless (it is echoed in a header
// and written to every log line of the request), else a fresh UUID.
import { randomUUID } from 'node:crypto';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function requestIdFor(given: string | string[] | undefined): string {
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}
