// A free TCP port on 127.0.0.1 for a server we start (Temporal, the API, metrics), picked *below*
// the kernel's ephemeral range. A port from listen(0) is ephemeral: between our close and the
// server's bind, the kernel may hand it out again — to the Temporal dev server's own internal
// listeners or to any outbound connection's source port — and start-up dies with
// "bind: address already in use" (seen in CI). Ports below the range are only ever taken on purpose.
import { readFileSync } from 'node:fs';
import net from 'node:net';

const HOST = '127.0.0.1';
const LOWEST = 10_000;
const ATTEMPTS = 50;

export async function freePort(): Promise<number> {
  const below = ephemeralRangeStart();
  if (below - LOWEST >= 1_000) {
    for (let i = 0; i < ATTEMPTS; i++) {
      const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
      if (await canListen(port)) return port;
    }
  }
  return listenOnAny(); // a host with no room below its ephemeral range: the old way
}

/** Linux's net.ipv4.ip_local_port_range start; 32768 (its default) elsewhere. */
function ephemeralRangeStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 0 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

function listenOnAny(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
