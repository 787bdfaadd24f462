-- A global, durable order over all sandbox events: what live streams (SSE `id:`) and webhook
-- deliveries resume from. Ids must be handed out in commit order, or a reader that saw id 7
-- commit before id 6 would resume after 7 and never see 6. So the trigger takes a transaction
-- advisory lock before it draws the id: the lock is held until commit, so whoever draws the next
-- id does so after every smaller id is visible. Event writes are one short statement each (or one
-- small transaction), so holding the lock to commit costs little. NOTIFY wakes followers at commit.
CREATE SEQUENCE sandbox_events_id_seq AS bigint;
ALTER TABLE sandbox_events ADD COLUMN id bigint;
UPDATE sandbox_events e SET id = o.n
  FROM (SELECT sandbox_id, seq, row_number() OVER (ORDER BY at, sandbox_id, seq) AS n FROM sandbox_events) o
 WHERE e.sandbox_id = o.sandbox_id AND e.seq = o.seq;
SELECT setval('sandbox_events_id_seq', GREATEST((SELECT max(id) FROM sandbox_events), 0) + 1, false);
ALTER TABLE sandbox_events ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX sandbox_events_id_idx ON sandbox_events (id);

CREATE FUNCTION sandbox_events_assign_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1752134005); -- 'hour' + 5: this migration's lock, events only
  NEW.id := nextval('sandbox_events_id_seq');
  RETURN NEW;
END $$;
CREATE TRIGGER sandbox_events_assign_id BEFORE INSERT ON sandbox_events
  FOR EACH ROW EXECUTE FUNCTION sandbox_events_assign_id();

CREATE FUNCTION sandbox_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sandbox_events', NEW.id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER sandbox_events_notify AFTER INSERT ON sandbox_events
  FOR EACH ROW EXECUTE FUNCTION sandbox_events_notify();
