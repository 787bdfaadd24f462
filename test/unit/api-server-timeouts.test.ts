// The API server does not cut a slow upload at Node's default requestTimeout (300 s), and still
// drops a client that never finishes its headers.
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { API_REQUEST_TIMEOUT_MS, applyServerTimeouts } from '../../api/server-timeouts';

describe('applyServerTimeouts', () => {
  it('allows an hour for a request body; keeps the headers timeout', () => {
    const server = http.createServer();
    const before = server.headersTimeout;
    expect(server.requestTimeout).toBe(300_000); // Node's default: a 100 MiB body at < 350 KB/s is cut
    applyServerTimeouts(server);
    expect(server.requestTimeout).toBe(API_REQUEST_TIMEOUT_MS);
    expect(API_REQUEST_TIMEOUT_MS).toBeGreaterThanOrEqual(60 * 60_000);
    expect(server.headersTimeout).toBe(before);
    expect(server.headersTimeout).toBeLessThan(server.requestTimeout);
  });
});
