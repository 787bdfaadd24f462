// Webhooks over the registry and Temporal: a row per subscription (secret sealed), a `webhook:<id>`
// workflow that delivers. Owner-scoped like sandboxes: another owner's webhook does not exist (404).
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type pg from 'pg';
import { AddressRefusedError, checkWebhookHost } from '../../activities/webhook-address-guard';
import type { CodecKeys } from '../../codec/keys';
import { sealSecret } from '../../codec/secret-box';
import {
  getWebhook,
  insertWebhook,
  listDeliveries,
  listWebhooks,
  markWebhookDeleted,
  WebhookQuotaError,
  type Delivery,
  type Webhook,
} from '../../registry/webhooks';
import { webhookWorkflowId } from '../../workflows/ids';
import { canSee } from '../sandboxes/access';
import { ApiError, fromTemporal, notFound } from '../errors';
import type { Principal } from '../tokens';
import type { CreateWebhookBody } from './schemas';
import { startWebhookWorkflow } from './workflow';

export interface WebhookServiceOptions {
  /** The main task queue: the webhook workflows run there, their activities on `<queue>-webhooks`. */
  taskQueue: string;
  /** Seal the signing secrets (the workers open them with the same keys). */
  codecKeys: CodecKeys;
  /** HOURGLASS_WEBHOOK_ALLOW_PRIVATE: accept URLs whose host is loopback/private. */
  allowPrivate: boolean;
  /** HOURGLASS_MAX_WEBHOOKS_PER_OWNER: live webhooks a `user` owner may have (default 20; admins are not counted). */
  maxWebhooksPerOwner?: number;
}

export const DEFAULT_MAX_WEBHOOKS_PER_OWNER = 20;

export class WebhookService {
  constructor(
    private readonly client: Client,
    private readonly pool: pg.Pool,
    private readonly opts: WebhookServiceOptions,
  ) {}

  /** Subscribes; the answer carries the secret (generated when not given) — the only time it is shown. */
  async create(p: Principal, body: CreateWebhookBody): Promise<Webhook & { secret: string }> {
    await this.checkHost(new URL(body.url));
    const id = `whk_${randomBytes(8).toString('hex')}`;
    const secret = body.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const webhook = await this.insert(p, {
      id,
      owner: p.owner,
      allOwners: p.role === 'admin',
      url: body.url,
      events: body.events,
      secret: sealSecret(this.opts.codecKeys, id, secret),
    });
    try {
      await startWebhookWorkflow(this.client, this.opts.taskQueue, webhook);
    } catch (err) {
      // No workflow, no webhook: a subscription that silently never delivers is worse than an error.
      await markWebhookDeleted(this.pool, id).catch(() => {});
      throw fromTemporal(err) ?? err;
    }
    return { ...webhook, secret };
  }

  async list(p: Principal): Promise<Webhook[]> {
    return listWebhooks(this.pool, p.role === 'admin' ? undefined : p.owner);
  }

  async get(p: Principal, id: string): Promise<Webhook> {
    const webhook = await getWebhook(this.pool, id);
    if (!webhook || webhook.deletedAt || !canSee(p, webhook.owner)) throw notFound(`webhook ${id}`);
    return webhook;
  }

  /** Marks it deleted, then cancels its workflow: no delivery starts after this returns. */
  async delete(p: Principal, id: string): Promise<Webhook> {
    const webhook = await this.get(p, id);
    if (!(await markWebhookDeleted(this.pool, id))) throw notFound(`webhook ${id}`);
    try {
      await this.client.workflow.getHandle(webhookWorkflowId(id)).cancel();
    } catch (err) {
      // Already gone: the row says deleted, so a later run would end at once anyway.
      if (!(err instanceof WorkflowNotFoundError)) throw fromTemporal(err) ?? err;
    }
    return (await getWebhook(this.pool, id)) ?? webhook;
  }

  async deliveries(
    p: Principal,
    id: string,
    page: { limit: number; cursor?: string },
  ): Promise<{ items: Delivery[]; nextCursor: string | null }> {
    await this.get(p, id);
    return listDeliveries(this.pool, id, { limit: page.limit, before: page.cursor });
  }

  /**
   * Each webhook is a workflow and a wait on every worker: one owner must not take them all from
   * the others (admins' are not counted, like their sandboxes).
   */
  private async insert(p: Principal, w: Parameters<typeof insertWebhook>[1]): Promise<Webhook> {
    const max = p.role === 'admin' ? undefined : (this.opts.maxWebhooksPerOwner ?? DEFAULT_MAX_WEBHOOKS_PER_OWNER);
    try {
      return await insertWebhook(this.pool, w, max);
    } catch (err) {
      if (!(err instanceof WebhookQuotaError)) throw err;
      const message = `${p.owner} already has ${err.live} live webhooks (at most ${err.max}); delete some first`;
      throw new ApiError(429, 'quota_exceeded', message, { owner: p.owner, live: err.live, max: err.max });
    }
  }

  private async checkHost(url: URL): Promise<void> {
    try {
      await checkWebhookHost(url, this.opts.allowPrivate);
    } catch (err) {
      if (err instanceof AddressRefusedError) {
        throw new ApiError(
          400,
          'invalid_argument',
          `url: ${err.message}; webhooks go to public addresses only (an operator can allow private ones with ` +
            'HOURGLASS_WEBHOOK_ALLOW_PRIVATE=1)',
        );
      }
      const code = (err as NodeJS.ErrnoException).code;
      throw new ApiError(400, 'invalid_argument', `url: cannot resolve host ${url.hostname} (${code ?? 'error'})`);
    }
  }
}
