-- Per-owner caps of the data plane (the API counts before it starts a command or a transfer):
-- running streamed/background commands, found through this small partial index (a row leaves it
-- when the command ends), and transfers in flight per owner.
CREATE INDEX execs_running_idx ON execs (sandbox_id) WHERE finished_at IS NULL AND mode <> 'wait';
CREATE INDEX transfers_owner_idx ON transfers (owner, created_at);
