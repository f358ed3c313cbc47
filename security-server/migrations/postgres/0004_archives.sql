-- The archiver: which records went into which archive file, and the last
-- linking digest of each archive group.
ALTER TABLE message_log ADD COLUMN archive_file TEXT;
CREATE TABLE archive_digests (
    group_key   TEXT PRIMARY KEY,
    last_digest TEXT NOT NULL,
    last_file   TEXT NOT NULL
);
