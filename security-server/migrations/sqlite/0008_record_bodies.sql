-- A record's contents apart from the record. Time-stamping and archiving update
-- records, and SQLite rewrites a whole row, message and attachments included, on
-- every update; the signature comes first so that the time-stamper reads it
-- without walking through the message.
CREATE TABLE message_log_body (
    record_id   INTEGER PRIMARY KEY REFERENCES message_log (id),
    signature   BLOB    NOT NULL,
    hash_chain_result BLOB,
    hash_chain  BLOB,
    message     BLOB    NOT NULL,
    attachments BLOB
);
INSERT INTO message_log_body (record_id, signature, hash_chain_result, hash_chain, message, attachments)
    SELECT id, signature, hash_chain_result, hash_chain, message, attachments FROM message_log;
ALTER TABLE message_log DROP COLUMN message;
ALTER TABLE message_log DROP COLUMN signature;
ALTER TABLE message_log DROP COLUMN hash_chain_result;
ALTER TABLE message_log DROP COLUMN hash_chain;
ALTER TABLE message_log DROP COLUMN attachments;
