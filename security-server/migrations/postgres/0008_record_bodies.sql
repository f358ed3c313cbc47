-- A record's contents apart from the record, as in SQLite (where an update
-- rewrites the whole row): time-stamping and archiving update only the small
-- record, and the time-stamper reads signatures without the messages.
CREATE TABLE message_log_body (
    record_id   BIGINT  PRIMARY KEY REFERENCES message_log (id),
    signature   BYTEA   NOT NULL,
    hash_chain_result BYTEA,
    hash_chain  BYTEA,
    message     BYTEA   NOT NULL,
    attachments BYTEA
);
INSERT INTO message_log_body (record_id, signature, hash_chain_result, hash_chain, message, attachments)
    SELECT id, signature, hash_chain_result, hash_chain, message, attachments FROM message_log;
ALTER TABLE message_log
    DROP COLUMN message,
    DROP COLUMN signature,
    DROP COLUMN hash_chain_result,
    DROP COLUMN hash_chain,
    DROP COLUMN attachments;
