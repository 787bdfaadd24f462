// /v1/webhooks routes (api/webhooks/routes.ts), and the delivery a subscriber receives (OpenAPI 3.1
// `webhooks`). Request schemas are the ones the routes parse with.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  CreatedWebhookView,
  DeliveryView,
  WebhookView,
  createWebhookBody,
  deliveriesQuery,
} from '../../webhooks/schemas';
import { authErrors, idParams, json } from '../common';
import { FeedEvent } from './events';

const tags = ['webhooks'];
const params = idParams('webhook');
const location = z.object({ Location: z.string().openapi({ description: 'The webhook: /v1/webhooks/{id}' }) });

/** The JSON body of a delivery: the feed event plus the delivery id (activities/webhooks.ts). */
const WebhookEvent = FeedEvent.extend({
  deliveryId: z.string().openapi({ description: 'Same as Hourglass-Delivery-Id: dedupe on it' }),
}).openapi('WebhookEvent');

export function registerWebhookPaths(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: 'post',
    path: '/v1/webhooks',
    tags,
    summary: 'Subscribe a URL to sandbox events (signed, retried deliveries)',
    description:
      'The URL’s host must resolve to public addresses only (unless the operator set ' +
      'HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1). An admin’s webhook receives every owner’s events; a user’s, only ' +
      'their own sandboxes’. Deliveries start with the events after this call. The answer carries the secret ' +
      '(yours, or a generated one when omitted) — the only time it is shown. A user may have ' +
      'HOURGLASS_MAX_WEBHOOKS_PER_OWNER (20) live webhooks; beyond: 429 quota_exceeded.',
    request: { body: { required: true, content: json(createWebhookBody) } },
    responses: {
      201: { description: 'Subscribed', headers: location, content: json(CreatedWebhookView) },
      ...authErrors(413, 429),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks',
    tags,
    summary: 'List webhooks (yours; admins see everyone’s), newest first',
    responses: {
      200: { description: 'The webhooks', content: json(z.object({ items: z.array(WebhookView) })) },
      ...authErrors(),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks/{id}',
    tags,
    summary: 'One webhook (never its secret)',
    request: { params },
    responses: { 200: { description: 'The webhook', content: json(WebhookView) }, ...authErrors(404) },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/webhooks/{id}',
    tags,
    summary: 'Delete a webhook: its workflow is cancelled, no delivery starts after this answer',
    request: { params },
    responses: { 200: { description: 'Deleted (deletedAt set)', content: json(WebhookView) }, ...authErrors(404) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks/{id}/deliveries',
    tags,
    summary: 'A webhook’s deliveries, newest event first, each with every attempt',
    request: {
      params,
      query: deliveriesQuery.extend({
        cursor: deliveriesQuery.shape.cursor.openapi({ param: { description: 'nextCursor of the previous page' } }),
      }),
    },
    responses: {
      200: {
        description: 'A page of deliveries',
        content: json(z.object({ items: z.array(DeliveryView), nextCursor: z.string().nullable() })),
      },
      ...authErrors(404),
    },
  });

  // Registered by hand: the generator does not collect schemas that only a `webhooks` entry uses.
  registry.register('WebhookEvent', WebhookEvent);
  registry.registerWebhook({
    method: 'post',
    path: 'sandboxEvent',
    tags,
    summary: 'What Hourglass POSTs to a subscribed URL',
    description:
      'Verify `Hourglass-Signature: t=<unix seconds>,v1=<hex>`: v1 must equal HMAC-SHA256(secret, "<t>.<raw body>") ' +
      'and t be recent. Answer 2xx within 10 s; anything else is retried (1 s, 2 s, 4 s … at most 10 min apart) ' +
      'until the retry window closes. Events of one subscription arrive in order, one at a time.',
    request: {
      headers: z.object({
        'Hourglass-Delivery-Id': z
          .string()
          .openapi({ param: { description: '`<webhookId>:<eventId>`: dedupe on it' } }),
        'Hourglass-Event': z.string().openapi({ param: { description: 'The event type, e.g. sandbox.expired' } }),
        'Hourglass-Signature': z.string().openapi({ param: { description: 't=<unix seconds>,v1=<hex HMAC-SHA256>' } }),
      }),
      body: { required: true, content: json(WebhookEvent) },
    },
    responses: { 200: { description: 'Any 2xx: delivered' } },
  });
}
