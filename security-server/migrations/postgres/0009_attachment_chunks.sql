-- Attachments in chunks of at most 1 MiB, one row each, so that a large
-- attachment streams from its spool file into the log without
-- being held whole in memory. Records logged before this keep theirs in
-- message_log_body.attachments.
CREATE TABLE message_log_attachment (
    record_id BIGINT NOT NULL REFERENCES message_log (id),
    part      INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    data      BYTEA    NOT NULL,
    PRIMARY KEY (record_id, part, seq)
);
