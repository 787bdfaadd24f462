// One signed webhook POST. The signature (Stripe-style) binds a timestamp to the exact body, so a
// receiver can check both that Hourglass sent it and that it is fresh (no replay of old captures):
//   Hourglass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
// Redirects are not followed (a 3xx is a failed attempt): a redirect could point past the address guard.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { AddressRefusedError, guardedLookup, hostOf, refusedAddressReason } from './webhook-address-guard';

export const WEBHOOK_TIMEOUT_MS = 10_000;

export interface WebhookPost {
  url: string;
  secret: string;
  deliveryId: string;
  eventType: string;
  /** The raw JSON body: signed and sent byte for byte. */
  body: string;
  /** HOURGLASS_WEBHOOK_ALLOW_PRIVATE: skip the address guard (local receivers, tests). */
  allowPrivate: boolean;
  /** The activity's cancellation; the per-attempt timeout is added to it. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface WebhookPostResult {
  /** The receiver's HTTP status, when it answered. */
  statusCode?: number;
  /** Why there is no (2xx) answer: connection error, timeout, refused address. */
  error?: string;
  /** The address guard refused the host: retrying cannot help. */
  refused: boolean;
  durationMs: number;
}

export function webhookSignature(secret: string, unixSeconds: number, body: string): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

export async function postWebhook(p: WebhookPost): Promise<WebhookPostResult> {
  const started = performance.now();
  const done = (r: Omit<WebhookPostResult, 'durationMs' | 'refused'> & { refused?: boolean }) => ({
    refused: false,
    ...r,
    durationMs: Math.round(performance.now() - started),
  });
  const url = new URL(p.url);
  const host = hostOf(url);
  // Node connects to IP literals without calling `lookup`: check them here.
  const literalRefusal = !p.allowPrivate && isIP(host) ? refusedAddressReason(host) : undefined;
  if (literalRefusal) return done({ error: `address refused: ${host}: ${literalRefusal}`, refused: true });

  const timeoutMs = p.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const signals = [AbortSignal.timeout(timeoutMs), ...(p.signal ? [p.signal] : [])];
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(p.body)),
    'user-agent': 'Hourglass-Webhooks/1',
    'hourglass-delivery-id': p.deliveryId,
    'hourglass-event': p.eventType,
    'hourglass-signature': webhookSignature(p.secret, Math.floor(Date.now() / 1000), p.body),
  };
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve) => {
    let statusCode: number | undefined;
    const req = send(url, {
      method: 'POST',
      headers,
      // A fresh connection per attempt, resolved through the guard: no pooled socket outlives its check.
      agent: false,
      ...(p.allowPrivate ? {} : { lookup: guardedLookup }),
      signal: AbortSignal.any(signals),
    });
    req.once('response', (res) => {
      statusCode = res.statusCode;
      res.resume(); // the body is not needed; read it so the exchange completes
      res.once('end', () => resolve(done({ statusCode })));
      res.once('error', () => resolve(done({ statusCode })));
    });
    req.once('error', (err) => {
      if (statusCode !== undefined) return resolve(done({ statusCode }));
      if (err instanceof AddressRefusedError) {
        return resolve(done({ error: `address refused: ${err.message}`, refused: true }));
      }
      const timedOut = err.name === 'AbortError' && signals[0]!.aborted;
      resolve(done({ error: timedOut ? `no answer within ${timeoutMs / 1000} s` : describe(err) }));
    });
    req.end(p.body);
  });
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
