-- A sandbox ends once. A force destroy (reaper, API) and a late write from the workflow run it
-- terminated could each append a DESTROYED event; this index makes the second one a no-op
-- (event inserts are ON CONFLICT DO NOTHING). Duplicates written before it: the first one stays.
DELETE FROM sandbox_events later USING sandbox_events earlier
 WHERE later.to_state = 'DESTROYED' AND earlier.to_state = 'DESTROYED'
   AND later.sandbox_id = earlier.sandbox_id AND later.seq > earlier.seq;
CREATE UNIQUE INDEX sandbox_events_one_destroyed_idx ON sandbox_events (sandbox_id) WHERE to_state = 'DESTROYED';
