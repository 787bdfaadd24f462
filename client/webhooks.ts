// Webhooks: signed deliveries of sandbox events to a URL.
import { seg, type Http } from './http';
import type { CreateWebhookRequest, CreatedWebhook, DeliveriesQuery, Webhook, WebhookDelivery } from './types';

const base = (id: string) => `/v1/webhooks/${seg(id)}`;

/** The answer carries the signing secret: the only time it is shown. */
export function createWebhook(http: Http, body: CreateWebhookRequest): Promise<CreatedWebhook> {
  return http.json('POST', '/v1/webhooks', { body });
}

export function listWebhooks(http: Http): Promise<{ items: Webhook[] }> {
  return http.json('GET', '/v1/webhooks');
}

export function getWebhook(http: Http, id: string): Promise<Webhook> {
  return http.json('GET', base(id));
}

export function deleteWebhook(http: Http, id: string): Promise<Webhook> {
  return http.json('DELETE', base(id));
}

/** Newest event first; pass `nextCursor` back as `cursor`. */
export function webhookDeliveries(
  http: Http,
  id: string,
  query: DeliveriesQuery = {},
): Promise<{ items: WebhookDelivery[]; nextCursor: string | null }> {
  return http.json('GET', `${base(id)}/deliveries`, { query });
}
