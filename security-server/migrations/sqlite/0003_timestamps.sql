-- RFC 3161 time stamps of the message log: one token per batch of records.
CREATE TABLE timestamps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token       BLOB    NOT NULL,
    -- What the token's imprint covers: a record's SignatureValue octets, or the
    -- hash chain result of a batch.
    stamped     BLOB    NOT NULL,
    hash_chain_result BLOB,
    created_at  TEXT    NOT NULL
);
ALTER TABLE message_log ADD COLUMN timestamp_id INTEGER REFERENCES timestamps (id);
ALTER TABLE message_log ADD COLUMN ts_hash_chain BLOB;
CREATE INDEX message_log_unstamped ON message_log (timestamp_id) WHERE timestamp_id IS NULL;
