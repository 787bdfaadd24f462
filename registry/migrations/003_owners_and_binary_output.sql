-- Owners: every sandbox belongs to the owner of the token that created it. Rows written before
-- owners existed belong to 'local' (the single user of an unauthenticated install).
ALTER TABLE sandboxes ADD COLUMN owner text NOT NULL DEFAULT 'local';
ALTER TABLE sandboxes ALTER COLUMN owner DROP DEFAULT;
CREATE INDEX sandboxes_owner_created_idx ON sandboxes (owner, created_at DESC, id DESC);

-- Limits the driver enforced (null: written before limits existed).
ALTER TABLE sandboxes ADD COLUMN limits jsonb;

-- Command output is stored as the exact bytes (it may hold NUL or be invalid UTF-8).
ALTER TABLE execs ALTER COLUMN stdout DROP DEFAULT;
ALTER TABLE execs ALTER COLUMN stderr DROP DEFAULT;
ALTER TABLE execs ALTER COLUMN stdout TYPE bytea USING convert_to(stdout, 'UTF8');
ALTER TABLE execs ALTER COLUMN stderr TYPE bytea USING convert_to(stderr, 'UTF8');
ALTER TABLE execs ALTER COLUMN stdout SET DEFAULT '\x';
ALTER TABLE execs ALTER COLUMN stderr SET DEFAULT '\x';

-- Exec environment: names only; values are secrets and are never stored.
ALTER TABLE execs ADD COLUMN env_names jsonb NOT NULL DEFAULT '[]';
