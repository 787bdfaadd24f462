// Webhook request bodies, queries and answers, validated (and documented) with zod.
import '../openapi/extend-zod';
import { z } from 'zod';
import { eventIdSchema } from '../../registry/event-id';
import { EVENT_TYPES } from '../../registry/event-types';

/** `sandbox.<state lowercased>`, or every event: `sandbox.*` / `*`. */
export const WEBHOOK_EVENT_TYPES = ['*', 'sandbox.*', ...EVENT_TYPES] as [string, ...string[]];

export const MIN_SECRET_LENGTH = 16;

/** The URL, or undefined when it does not parse (refinements run even after .url() failed). */
const parsed = (u: string) => (URL.canParse(u) ? new URL(u) : undefined);

const webhookUrl = z
  .string()
  .max(2048)
  .url('must be an absolute URL')
  .refine((u) => /^https?:$/.test(parsed(u)?.protocol ?? 'http:'), 'must be an http:// or https:// URL')
  .refine(
    (u) => !parsed(u)?.username && !parsed(u)?.password,
    'must not carry credentials (user:password@): URLs are stored in clear; the signature authenticates us',
  )
  .refine((u) => !parsed(u)?.hash, 'must not have a #fragment')
  .openapi({ example: 'https://example.com/hooks/hourglass' });

export const createWebhookBody = z
  .object({
    url: webhookUrl,
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES, { message: `event types are ${WEBHOOK_EVENT_TYPES.join(', ')}` }))
      .min(1, 'give at least one event type')
      .max(WEBHOOK_EVENT_TYPES.length)
      .transform((types) => [...new Set(types)])
      .openapi({ example: ['sandbox.expired', 'sandbox.destroyed'] }),
    secret: z
      .string()
      .min(MIN_SECRET_LENGTH, `must be at least ${MIN_SECRET_LENGTH} characters`)
      .max(256)
      .optional()
      .openapi({
        description:
          'The HMAC-SHA256 signing key (16-256 characters). Omit it to have one generated: it is returned once, ' +
          'in this response only.',
      }),
  })
  .strict()
  .openapi('CreateWebhook');
export type CreateWebhookBody = z.infer<typeof createWebhookBody>;

const eventId = eventIdSchema;

export const deliveriesQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    /** The `nextCursor` of the previous page: deliveries of older events. */
    cursor: eventId.optional(),
  })
  .strict();

export const WebhookView = z
  .object({
    id: z.string().openapi({ example: 'whk_0f3a9c2e51d7b846' }),
    owner: z.string(),
    allOwners: z.boolean().openapi({ description: 'Created by an admin: every owner’s sandboxes’ events' }),
    url: z.string(),
    events: z.array(z.string()),
    cursor: z.string().openapi({ description: 'The last event id the subscription has finished with' }),
    createdAt: z.string(),
    deletedAt: z.string().optional(),
  })
  .openapi('Webhook');

export const CreatedWebhookView = WebhookView.extend({
  secret: z.string().openapi({ description: 'The signing secret. Shown in this response only, never again.' }),
}).openapi('CreatedWebhook');

export const DeliveryView = z
  .object({
    id: z.string().openapi({
      description: '`<webhookId>:<eventId>`: the Hourglass-Delivery-Id header; the same on every attempt',
      example: 'whk_0f3a9c2e51d7b846:1234',
    }),
    webhookId: z.string(),
    eventId: z.string(),
    eventType: z.string().openapi({ example: 'sandbox.expired' }),
    sandboxId: z.string(),
    status: z.enum(['pending', 'delivered', 'expired', 'failed']).openapi({
      description:
        'pending: being retried; delivered: a 2xx answer; expired: not delivered within the retry window; ' +
        'failed: not retryable (the address guard refused the host)',
    }),
    attempts: z.number().int(),
    lastStatusCode: z.number().int().optional(),
    lastError: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().optional(),
    attemptLog: z.array(
      z.object({
        attempt: z.number().int(),
        at: z.string(),
        statusCode: z.number().int().optional(),
        error: z.string().optional(),
        durationMs: z.number().int(),
      }),
    ),
  })
  .openapi('WebhookDelivery');
