-- The reaper reads every row not DESTROYED on each run; keep that a small index scan.
CREATE INDEX sandboxes_open_idx ON sandboxes (id) WHERE state <> 'DESTROYED';
