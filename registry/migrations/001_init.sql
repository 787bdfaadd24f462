-- The registry: a read model of sandboxes for fast list/filter and history.
-- Temporal stays the source of truth for the lifecycle.

CREATE TABLE sandboxes (
  id               text PRIMARY KEY,
  driver           text NOT NULL,
  template         text,
  state            text NOT NULL,
  labels           jsonb NOT NULL DEFAULT '{}',
  session_id       text,
  isolation        text,
  created_at       timestamptz NOT NULL,
  expires_at       timestamptz,
  max_expires_at   timestamptz,
  destroy_reason   text,
  error            text,
  job              jsonb,
  -- Sequence number of the last transition applied: upserts only move forward.
  seq              integer NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandboxes_state_idx ON sandboxes (state);
CREATE INDEX sandboxes_created_idx ON sandboxes (created_at DESC, id DESC);
CREATE INDEX sandboxes_labels_idx ON sandboxes USING gin (labels);
CREATE INDEX sandboxes_session_idx ON sandboxes (session_id) WHERE session_id IS NOT NULL;

CREATE TABLE sandbox_events (
  sandbox_id  text NOT NULL,
  seq         integer NOT NULL,
  from_state  text,
  to_state    text NOT NULL,
  reason      text NOT NULL,
  at          timestamptz NOT NULL,
  PRIMARY KEY (sandbox_id, seq)
);

CREATE TABLE execs (
  sandbox_id   text NOT NULL,
  exec_id      text NOT NULL,
  command      jsonb NOT NULL,
  exit_code    integer,
  stdout       text NOT NULL DEFAULT '',
  stderr       text NOT NULL DEFAULT '',
  timed_out    boolean NOT NULL DEFAULT false,
  error        text,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  duration_ms  integer,
  PRIMARY KEY (sandbox_id, exec_id)
);

CREATE TABLE reaper_runs (
  id          bigserial PRIMARY KEY,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz,
  dry_run     boolean NOT NULL,
  counts      jsonb NOT NULL DEFAULT '{}',
  items       jsonb NOT NULL DEFAULT '[]'
);
