// The block printed once the service is up: where to reach it and how safe it is, in one place.
// Weaker modes (no auth, no isolation) say so here, loudly, not in a JSON field.
import type { TokenStore } from '../api/tokens';
import type { CodecKeys } from '../codec/keys';
import type { HypervisorSet } from '../hypervisors/index';
import { isLoopback } from '../config/service';

export interface BannerInfo {
  apiUrl?: string;
  host: string;
  tokens: TokenStore;
  temporalAddress: string;
  temporalEmbedded: boolean;
  temporalUiUrl?: string;
  registry: string;
  codecKeys: CodecKeys;
  /** The worker's drivers (with what each enforces), or the names the API offers. */
  drivers: HypervisorSet | string[];
  defaultDriver: string;
  taskQueue: string;
  reaper?: { scheduleId: string; intervalSeconds: number };
  /** Webhook deliveries: the private-address opt-in and the retry window. */
  webhooks?: { allowPrivate: boolean; retryForSeconds: number };
}

export function startupBanner(b: BannerInfo): string {
  const rows: [string, string][] = [];
  if (b.apiUrl) rows.push(['API', `${b.apiUrl}  (${authLine(b)})`]);
  if (b.temporalUiUrl) {
    rows.push([
      'Temporal UI',
      `${b.temporalUiUrl}  (no login: loopback only; decrypts payloads through the API's codec endpoint)`,
    ]);
  }
  rows.push([
    'Temporal',
    `${b.temporalAddress}${b.temporalEmbedded ? ' (embedded dev server, 127.0.0.1 only)' : ''}, ` +
      `task queue '${b.taskQueue}'`,
  ]);
  rows.push(['Registry', b.registry]);
  rows.push(['Payloads', `encrypted (AES-256-GCM, key ${b.codecKeys.current.id} from ${b.codecKeys.source})`]);
  driverLines(b).forEach(({ name, line }, i) => {
    rows.push([
      i === 0 ? 'Drivers' : '',
      `${name}${name === b.defaultDriver ? ' (default)' : ''}${line ? `: ${line}` : ''}`,
    ]);
  });
  if (b.reaper) rows.push(['Reaper', `every ${b.reaper.intervalSeconds} s (schedule '${b.reaper.scheduleId}')`]);
  if (b.webhooks) rows.push(['Webhooks', webhookLine(b.webhooks)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return ['Hourglass is up', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}

/** The same facts as data: the start-up log record's fields (a JSON log reader wants no table). */
export function startupFields(b: BannerInfo): Record<string, unknown> {
  return {
    apiUrl: b.apiUrl,
    temporalUiUrl: b.temporalUiUrl,
    temporalAddress: b.temporalAddress,
    temporalEmbedded: b.temporalEmbedded,
    taskQueue: b.taskQueue,
    registry: b.registry,
    auth: b.tokens.enabled ? 'tokens' : isLoopback(b.host) ? 'off (loopback only)' : 'OFF (insecure, not loopback)',
    owners: b.tokens.owners.map((o) => ({ owner: o.owner, role: o.role })),
    codecKey: b.codecKeys.current.id,
    drivers: driverLines(b).map(({ name, line }) => ({
      name,
      default: name === b.defaultDriver,
      isolation: line,
    })),
    ...(b.reaper ? { reaper: b.reaper } : {}),
    ...(b.webhooks ? { webhooks: b.webhooks } : {}),
  };
}

function webhookLine(w: { allowPrivate: boolean; retryForSeconds: number }): string {
  const retries = `retried for ${w.retryForSeconds} s`;
  if (!w.allowPrivate) return `public addresses only, ${retries}`;
  return (
    `${retries}; HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1 — DELIVERIES MAY REACH LOOPBACK AND PRIVATE ADDRESSES ` +
    "(this host's services, the cloud metadata service): any tenant can make this worker call them"
  );
}

function driverLines(b: BannerInfo): { name: string; line: string }[] {
  return Array.isArray(b.drivers)
    ? b.drivers.map((name) => ({ name, line: 'run by the workers of this task queue' }))
    : b.drivers
        .all()
        .map((d) => ({ name: d.name, line: (d.summary?.() ?? '').replace(new RegExp(`^${d.name}: `), '') }));
}

function authLine(b: BannerInfo): string {
  if (b.tokens.enabled) {
    const owners = b.tokens.owners.map((o) => `${o.owner} (${o.role})`).join(', ');
    return `auth: bearer tokens for ${owners}`;
  }
  if (isLoopback(b.host)) {
    return 'auth: OFF — loopback only; the local user is an admin. Set HOURGLASS_API_TOKENS before exposing it';
  }
  return (
    `auth: OFF on ${b.host} (HOURGLASS_INSECURE_NO_AUTH=1) — ` +
    'ANYONE WHO CAN REACH THIS PORT CAN RUN COMMANDS IN EVERY SANDBOX'
  );
}

/** A database URL for the log: no password. */
export function redactedDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}
