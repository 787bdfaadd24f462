-- The data plane: command output and file bytes travel through these tables, beside Temporal,
-- never through workflow history. The workflow decides whether an operation may run and keeps
-- the execs row; the bytes are written here by the worker and read by any API process.

-- How an exec was asked for (wait: the answer carries the output; stream/background: exec_output
-- does), and whether someone asked to kill it.
ALTER TABLE execs ADD COLUMN mode text NOT NULL DEFAULT 'wait';
ALTER TABLE execs ADD COLUMN kill_requested boolean NOT NULL DEFAULT false;

-- A streamed or background command's output, in the order the driver read it ('notice': a line
-- from Hourglass itself, e.g. that output past the retained cap was dropped). seq counts from 1
-- per exec, so a follower resumes after the last seq it saw (SSE Last-Event-ID).
CREATE TABLE exec_output (
  sandbox_id text NOT NULL,
  exec_id    text NOT NULL,
  seq        integer NOT NULL,
  stream     text NOT NULL CHECK (stream IN ('stdout', 'stderr', 'notice')),
  data       bytea NOT NULL,
  PRIMARY KEY (sandbox_id, exec_id, seq)
);

-- Followers wake when an exec ends (its row's finished_at is set) as well as on new output.
CREATE FUNCTION execs_notify_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.finished_at IS NOT NULL
     AND (TG_OP = 'INSERT' OR OLD.finished_at IS NULL OR OLD.error IS DISTINCT FROM NEW.error) THEN
    PERFORM pg_notify('exec_output', NEW.sandbox_id || ' ' || NEW.exec_id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER execs_notify_end AFTER INSERT OR UPDATE ON execs
  FOR EACH ROW EXECUTE FUNCTION execs_notify_end();

-- A kill reaches the worker running the command at once: it LISTENs on exec_kill (Temporal's
-- cancellation would wait for the command's next heartbeat).
CREATE FUNCTION execs_notify_kill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('exec_kill', NEW.sandbox_id || ' ' || NEW.exec_id);
  RETURN NULL;
END $$;
CREATE TRIGGER execs_notify_kill AFTER UPDATE OF kill_requested ON execs
  FOR EACH ROW WHEN (NEW.kill_requested AND NOT OLD.kill_requested) EXECUTE FUNCTION execs_notify_kill();

-- A file on its way in or out of a sandbox, in chunks of up to 1 MiB. Upload: the API writes the
-- chunks, then the worker copies them into the sandbox. Download: the worker writes them, the API
-- streams them out. Either way the rows go once the transfer is done; the reaper removes any a
-- crash left behind.
CREATE TABLE transfers (
  id          text PRIMARY KEY,
  sandbox_id  text NOT NULL,
  owner       text NOT NULL,
  direction   text NOT NULL CHECK (direction IN ('upload', 'download')),
  path        text NOT NULL,
  kind        text,
  size        bigint,
  sha256      text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX transfers_created_idx ON transfers (created_at);

CREATE TABLE transfer_chunks (
  transfer_id text NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
  seq         integer NOT NULL,
  data        bytea NOT NULL,
  PRIMARY KEY (transfer_id, seq)
);
