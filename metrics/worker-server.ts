// A worker's metrics port (HOURGLASS_METRICS_PORT): GET /metrics and nothing else, no auth, bound to
// loopback unless HOURGLASS_METRICS_HOST says otherwise. It shows counts and timings, never a
// sandbox's id, command or output.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { METRICS_CONTENT_TYPE, metricsText } from './exposition';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(opts: { host: string; port: number }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    // Split, not parsed: `new URL` throws on request targets Node's parser lets through (`http://[/x`).
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== '/metrics') return reply(res, 404, 'not_found', `no route for ${req.method} ${path}: try /metrics`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return reply(res, 405, 'method_not_allowed', 'only GET /metrics is served here');
    }
    metricsText().then(
      (text) => {
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => reply(res, 500, 'internal', `metrics could not be collected: ${err.message}`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The API's error format, so a client sees one shape from every Hourglass port. */
function reply(res: http.ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code, message } }));
}
