-- Webhooks: subscriptions to the event feed (migration 005's global id), each delivered by a
-- `webhook:<id>` workflow. The signing secret is stored sealed with the codec key (AES-256-GCM,
-- codec/secret-box.ts), never in clear: a dump of this table cannot forge deliveries.
CREATE TABLE webhooks (
  id             text PRIMARY KEY,
  owner          text NOT NULL,
  -- Created by an admin: receives every owner's sandboxes' events, not only its owner's.
  all_owners     boolean NOT NULL DEFAULT false,
  url            text NOT NULL,
  events         text[] NOT NULL,
  secret_key_id  text NOT NULL,
  secret_sealed  bytea NOT NULL,
  -- The last event id the workflow has finished with (delivered, expired, failed or not matching).
  cursor         bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  deleted_at     timestamptz
);
CREATE INDEX webhooks_owner_idx ON webhooks (owner, created_at DESC, id DESC);

-- One row per (webhook, event): its id `<webhookId>:<eventId>` is what receivers dedupe on.
CREATE TABLE webhook_deliveries (
  id                text PRIMARY KEY,
  webhook_id        text NOT NULL REFERENCES webhooks (id),
  event_id          bigint NOT NULL,
  event_type        text NOT NULL,
  sandbox_id        text NOT NULL,
  status            text NOT NULL CHECK (status IN ('pending', 'delivered', 'expired', 'failed')),
  attempts          integer NOT NULL DEFAULT 0,
  last_status_code  integer,
  last_error        text,
  created_at        timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at        timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  finished_at       timestamptz
);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, event_id DESC);

-- Every HTTP attempt of a delivery (Temporal's activity attempt number), for GET …/deliveries.
CREATE TABLE webhook_attempts (
  delivery_id  text NOT NULL REFERENCES webhook_deliveries (id),
  attempt      integer NOT NULL,
  at           timestamptz NOT NULL,
  status_code  integer,
  error        text,
  duration_ms  integer NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);
