// HTTP front of the simulator: PVE's wire conventions (proxmox-api.md §0, §1) around the route handlers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PveError, pveText } from './errors';
import type { RawParams } from './params';
import { WithTotal, type Route, type SimContext } from './routes';

export interface ServerOptions {
  /** `user@realm!tokenid` → secret. */
  tokens: Map<string, string>;
  /** true: the 8.4 body with `message` (pve-http-server ≥ 5.2.1); false: reason phrase only. */
  messageField: () => boolean;
  /** PVE delays 401 answers by about 3 s. */
  authFailureDelayMs: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  /** The handler ran (false for auth failures, injected sync errors and random failures). */
  handled: boolean;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.pattern.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { ...route, regex: new RegExp(`^${source}$`), names };
}

/** pve-http-server's $limit_max_post before 5.2.1 (PVE 8.0-8.3); 512 KiB after. */
const MAX_POST_BYTES = 64 * 1024;

/** Form bodies: repeated keys become arrays (proxmox-api.md §0). */
function formToParams(search: URLSearchParams, into: RawParams): void {
  for (const key of new Set(search.keys())) {
    const values = search.getAll(key);
    into[key] = values.length === 1 ? values[0] : values;
  }
}

async function readBody(req: IncomingMessage): Promise<RawParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/json')) {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new PveError(400, 'Parameter verification failed.', { body: 'expected a JSON object' });
    }
    return parsed as RawParams;
  }
  const params: RawParams = {};
  formToParams(new URLSearchParams(text), params);
  return params;
}

/** `PVEAPIToken=USER@REALM!TOKENID=SECRET` (a space instead of the first `=` works too; proxmox-api.md §1). */
function authenticate(header: string | undefined, tokens: Map<string, string>): { user: string } | { fail: string } {
  const m = header && /^PVEAPIToken[= ]([^!\s]+)!([^=\s]+)=(.+)$/.exec(header.trim());
  if (!m) return { fail: 'No ticket' };
  const [, user, tokenid, secret] = m as unknown as [string, string, string, string];
  const expected = tokens.get(`${user}!${tokenid}`);
  if (expected === undefined) return { fail: `no such token '${tokenid}' for user '${user}'` };
  if (expected !== secret) return { fail: 'invalid token value!' };
  return { user: `${user}!${tokenid}` };
}

const safeDecode = (path: string) => {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
};

/** The reason phrase is the first line of the message; Node refuses control characters there. */
const reasonPhrase = (message: string) => (message.split('\n')[0] ?? '').replace(/[^\x20-\x7e]/g, '?');

export function createPveServer(sim: SimContext, routes: Route[], opts: ServerOptions, log: RequestRecord[]): Server {
  const compiled = routes.map(compile);

  const send = (res: ServerResponse, status: number, reason: string, body: unknown) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, reasonPhrase(reason), {
      'content-type': 'application/json;charset=UTF-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  };

  const sendError = (res: ServerResponse, err: PveError) => {
    const body: Record<string, unknown> = { data: null };
    if (err.errors) body.errors = err.errors;
    if (opts.messageField()) body.message = `${err.message}\n`;
    send(res, err.status, err.message, body);
  };

  return createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://pve.invalid');
    const prefix = '/api2/json';
    const relPath = url.pathname.startsWith(`${prefix}/`) ? url.pathname.slice(prefix.length) : url.pathname;
    const record: RequestRecord = { method, path: safeDecode(relPath), status: 0, handled: false };
    log.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    try {
      const auth = authenticate(req.headers.authorization, opts.tokens);
      if ('fail' in auth) {
        await sleep(opts.authFailureDelayMs);
        res.writeHead(401, reasonPhrase(auth.fail), { 'content-length': 0 });
        res.end(); // empty body (proxmox-api.md §1)
        return;
      }
      // pveproxy answers a body over $limit_max_post before reading it (pve-http-server AnyEvent.pm).
      if (Number(req.headers['content-length'] ?? 0) > MAX_POST_BYTES) {
        throw new PveError(501, pveText.bodyTooLarge);
      }
      const params: RawParams = {};
      formToParams(url.searchParams, params);
      Object.assign(params, await readBody(req));

      let route: CompiledRoute | undefined;
      let match: RegExpExecArray | null = null;
      for (const r of compiled) {
        if (r.method !== method || !url.pathname.startsWith(prefix)) continue;
        match = r.regex.exec(relPath);
        if (match) {
          route = r;
          break;
        }
      }
      if (!route || !match) throw new PveError(501, pveText.notImplemented(method, relPath));
      // The path is percent-decoded, so an escaped UPID works (proxmox-api.md §0).
      const path = Object.fromEntries(route.names.map((name, i) => [name, decodeURIComponent(match![i + 1]!)]));
      if (path.node !== undefined && path.node !== sim.state.node) {
        throw new PveError(
          500,
          `hostname lookup '${path.node}' failed - ` +
            `failed to get address info for: ${path.node}: Name or service not known`,
        );
      }
      const vmid = path.vmid !== undefined ? Number(path.vmid) : undefined;

      const random = sim.faults.rollRandom();
      if (random) throw new PveError(random.status, random.message);
      const fault = sim.faults.take(route.op, ['http', 'reset', 'lose-response'], vmid);
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (fault?.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'http') {
        throw new PveError(fault.status ?? 500, fault.message ?? 'injected failure', fault.errors);
      }

      record.handled = true;
      const result = await route.handler({ path, params, user: auth.user });
      if (fault?.kind === 'lose-response') {
        // The work is done but pveproxy lost the worker's answer.
        throw new PveError(fault.status ?? 596, fault.message ?? pveText.connectionTimedOut);
      }
      if (result instanceof WithTotal) send(res, 200, 'OK', { data: result.data, total: result.total });
      else send(res, 200, 'OK', { data: result ?? null });
    } catch (err) {
      if (res.headersSent || res.destroyed) return;
      sendError(
        res,
        err instanceof PveError ? err : new PveError(500, err instanceof Error ? err.message : String(err)),
      );
    }
  });
}
