// The API server's own timeouts. Node's default requestTimeout (300 s) covers the whole request,
// body included: a 100 MiB upload over a slow link (≈ 340 KiB/s or less) would be cut with a 408
// mid-body. The body is streamed into the registry and stops at the 100 MiB cap, so a long upload
// costs a connection, not memory: allow an hour. headersTimeout (60 s) stays, so a client that
// never finishes its headers (slowloris) is still dropped; an idle connection is dropped by the
// socket's keep-alive timeout.
import type { Server } from 'node:http';

/** The longest a request may take to arrive, body included (a slow 100 MiB upload). */
export const API_REQUEST_TIMEOUT_MS = 60 * 60_000;

export function applyServerTimeouts(server: Server): Server {
  server.requestTimeout = API_REQUEST_TIMEOUT_MS;
  return server;
}
