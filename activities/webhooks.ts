// The webhook workflow's activities: wait for the subscription's next events (long poll on the
// event feed, woken by the process's one WebhookWaitHub), deliver one event (one signed POST per
// attempt; Temporal retries), and give up on one. Every attempt is written to the registry for
// GET /v1/webhooks/:id/deliveries.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import type { CodecKeys } from '../codec/keys';
import { openSecret } from '../codec/secret-box';
import { readFeedPage, type FeedEvent, type FeedFilter } from '../registry/event-feed';
import { EventListener, listenerConnectionConfig } from '../registry/event-listener';
import { stateOfEventType } from '../registry/event-types';
import {
  advanceWebhookCursor,
  deliveryIdOf,
  getWebhook,
  getWebhookWithSecret,
  openDelivery,
  recordDeliveryAttempt,
  settleDelivery,
  type DeliveryKey,
} from '../registry/webhooks';
import type { SandboxState } from '../workflows/states';
import { postWebhook } from './webhook-post';
import { WebhookWaitHub, type Waiter } from './webhook-wait-hub';

export interface WebhookSettings {
  /** Opens the sealed signing secrets (the same keys as the API's). */
  codecKeys: CodecKeys;
  /** HOURGLASS_WEBHOOK_ALLOW_PRIVATE: deliver to loopback/private addresses too. */
  allowPrivate: boolean;
  /** HOURGLASS_WEBHOOK_RETRY_FOR_SECONDS: how long one delivery is retried before it expires. */
  retryForSeconds: number;
  /** How long one wait for events lasts before it returns empty (default 60 s). */
  waitSeconds?: number;
}

export interface WebhookDeps {
  pool: pg.Pool;
  webhooks?: WebhookSettings;
}

export interface WebhookBatch {
  /** The webhook was deleted: the workflow ends. */
  deleted: boolean;
  /** Matching events after the cursor, oldest first. */
  events: FeedEvent[];
  /** Where the cursor stands once `events` are handled (past non-matching events too). */
  through: string;
  /** This worker's HOURGLASS_WEBHOOK_RETRY_FOR_SECONDS, for the deliveries' schedule-to-close. */
  retryForSeconds: number;
}

export type DeliveryOutcome = 'delivered' | 'already delivered' | 'already settled' | 'webhook deleted';

/** Events handed to the workflow at once: each goes through its history. */
const BATCH = 20;
/** Heartbeats of a wait (its heartbeat timeout is 30 s); without live wakes it re-reads this often too. */
const HEARTBEAT_MS = 10_000;

export function createWebhookActivities({ pool, webhooks }: WebhookDeps) {
  let hub: WebhookWaitHub | undefined;
  const settings = (): WebhookSettings => {
    if (webhooks) return webhooks;
    // Retryable: another worker on this queue may be configured.
    throw ApplicationFailure.retryable('this worker was started without webhook settings', 'WebhooksNotConfigured');
  };
  // One LISTEN connection and one feed reader per worker process, opened on the first wait and
  // closed 5 s after the last one (so a stopping worker lets go of it soon).
  const waits = () =>
    (hub ??= new WebhookWaitHub(
      pool,
      new EventListener({ connection: listenerConnectionConfig(pool), idleCloseMs: 5_000 }),
    ));

  return {
    /**
     * The subscription's next events after `after`; empty after a quiet wait (default 60 s) so the
     * workflow's history records progress. Heartbeats while it waits: a delete cancels it.
     */
    async waitForWebhookEvents(req: { webhookId: string; after: string }): Promise<WebhookBatch> {
      const { retryForSeconds, waitSeconds = 60 } = settings();
      const webhook = await getWebhook(pool, req.webhookId);
      if (!webhook || webhook.deletedAt) return { deleted: true, events: [], through: req.after, retryForSeconds };
      // The workflow's cursor is durable in its history; mirror it for the API and for a new run.
      await advanceWebhookCursor(pool, req.webhookId, req.after);
      const filter: FeedFilter = {
        ...(webhook.allOwners ? {} : { owner: webhook.owner }),
        ...statesFilter(webhook.events),
      };
      const ctx = Context.current();
      // A wake that lands while a read runs is remembered, so the wait after it returns at once.
      let woken = false;
      let wake = () => {};
      const waiter: Waiter = {
        through: req.after,
        filter,
        wake: () => {
          woken = true;
          wake();
        },
      };
      const leave = await waits().add(waiter);
      try {
        const deadline = Date.now() + waitSeconds * 1000;
        let read = true;
        for (;;) {
          if (read) {
            woken = false;
            const page = await readFeedPage(pool, waiter.through, filter, BATCH);
            if (page.events.length || Date.now() >= deadline) {
              return { deleted: false, events: page.events, through: page.through, retryForSeconds };
            }
            // Only other owners' or other types' events so far: the subscription is done with them.
            if (page.through !== waiter.through) await advanceWebhookCursor(pool, req.webhookId, page.through);
            waiter.through = page.through;
          }
          if (!woken) await sleepUntilWoken(Math.min(HEARTBEAT_MS, Math.max(0, deadline - Date.now())));
          ctx.heartbeat();
          if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
          // The hub woke it (a matching event), the wait is over, or wakes are not live (reconnecting).
          read = woken || Date.now() >= deadline || !waits().isListening;
        }
      } finally {
        leave();
      }

      function sleepUntilWoken(ms: number): Promise<void> {
        return new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            ctx.cancellationSignal.removeEventListener('abort', done);
            wake = () => {};
            resolve();
          };
          const timer = setTimeout(done, ms);
          ctx.cancellationSignal.addEventListener('abort', done);
          wake = done;
        });
      }
    },

    /**
     * One attempt at one event: a signed POST; 2xx = delivered, anything else throws so Temporal
     * retries with backoff. A delivered event is never sent again (a retried activity checks first).
     */
    async deliverWebhook(req: { webhookId: string; event: FeedEvent }): Promise<DeliveryOutcome> {
      const { codecKeys, allowPrivate } = settings();
      const ctx = Context.current();
      const webhook = await getWebhookWithSecret(pool, req.webhookId);
      if (!webhook || webhook.deletedAt) return 'webhook deleted';
      const key = deliveryKey(req.webhookId, req.event);
      const status = await openDelivery(pool, key);
      if (status === 'delivered') return 'already delivered';
      if (status !== 'pending') return 'already settled';
      const secret = openSecret(codecKeys, webhook.id, webhook.secret);
      const at = new Date().toISOString();
      const r = await postWebhook({
        url: webhook.url,
        secret,
        deliveryId: key.id,
        eventType: req.event.type,
        body: JSON.stringify({ ...req.event, deliveryId: key.id }),
        allowPrivate,
        signal: ctx.cancellationSignal,
      });
      const delivered = r.statusCode !== undefined && r.statusCode >= 200 && r.statusCode < 300;
      const error = delivered ? undefined : (r.error ?? `HTTP ${r.statusCode}`);
      await recordDeliveryAttempt(pool, key.id, {
        at,
        statusCode: r.statusCode,
        error,
        durationMs: r.durationMs,
        delivered,
      });
      if (delivered) return 'delivered';
      // A refused address stays refused: retrying for a day would only hammer the resolver.
      if (r.refused) throw ApplicationFailure.nonRetryable(error!, 'WebhookAddressRefused');
      // No URL: its path or query may carry a token, and this message lands in history and warn logs.
      throw ApplicationFailure.retryable(`delivery ${key.id} failed: ${error}`, 'WebhookNotDelivered');
    },

    /** The delivery will not be retried any more: `expired` (retried for too long) or `failed`. */
    async settleWebhookDelivery(req: {
      webhookId: string;
      event: FeedEvent;
      status: 'expired' | 'failed';
      reason: string;
    }): Promise<void> {
      await settleDelivery(pool, deliveryKey(req.webhookId, req.event), req.status, req.reason);
    },
  };
}

function deliveryKey(webhookId: string, event: FeedEvent): DeliveryKey {
  return {
    id: deliveryIdOf(webhookId, event.id),
    webhookId,
    eventId: event.id,
    eventType: event.type,
    sandboxId: event.sandboxId,
  };
}

/** `sandbox.expired` → EXPIRED; `*` or `sandbox.*` → every state (no filter). */
function statesFilter(types: string[]): Pick<FeedFilter, 'states'> {
  if (types.some((t) => t === '*' || t === 'sandbox.*')) return {};
  return { states: types.map(stateOfEventType).filter((s): s is SandboxState => s !== undefined) };
}
