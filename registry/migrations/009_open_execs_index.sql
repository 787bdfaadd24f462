-- Every open exec, plain ones included: the reaper closes those a terminated workflow left open,
-- and the per-owner cap (streamed/background only) reads the same small index. It replaces 008's.
CREATE INDEX execs_open_idx ON execs (sandbox_id) WHERE finished_at IS NULL;
DROP INDEX IF EXISTS execs_running_idx;
