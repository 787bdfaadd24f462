// /v1/webhooks routes: HTTP ↔ WebhookService. Every call acts as the token's owner.
import { Router } from 'express';
import { principalOf } from '../auth';
import { checkIdParam } from '../request-params';
import { wrap } from '../wrap';
import { createWebhookBody, deliveriesQuery } from './schemas';
import type { WebhookService } from './service';

export function webhookRoutes(webhooks: WebhookService): Router {
  const create = wrap(async (req, res) => {
    const body = createWebhookBody.parse(req.body ?? {});
    const webhook = await webhooks.create(principalOf(req), body);
    res.status(201).location(`/v1/webhooks/${webhook.id}`).json(webhook);
  });

  const list = wrap(async (req, res) => {
    res.json({ items: await webhooks.list(principalOf(req)) });
  });

  const get = wrap(async (req, res) => {
    res.json(await webhooks.get(principalOf(req), req.params.id!));
  });

  const remove = wrap(async (req, res) => {
    res.json(await webhooks.delete(principalOf(req), req.params.id!));
  });

  const deliveries = wrap(async (req, res) => {
    const page = deliveriesQuery.parse(req.query);
    res.json(await webhooks.deliveries(principalOf(req), req.params.id!, page));
  });

  const r = Router();
  checkIdParam(r, 'webhook');
  r.post('/', create);
  r.get('/', list);
  r.get('/:id', get);
  r.delete('/:id', remove);
  r.get('/:id/deliveries', deliveries);
  return r;
}
