-- RFC 3161 time stamps of the message log: one token per batch of records.
CREATE TABLE timestamps (
    id          BIGSERIAL PRIMARY KEY,
    token       BYTEA    NOT NULL,
    -- What the token's imprint covers: a record's SignatureValue octets, or the
    -- hash chain result of a batch.
    stamped     BYTEA    NOT NULL,
    hash_chain_result BYTEA,
    created_at  TEXT    NOT NULL
);
ALTER TABLE message_log ADD COLUMN timestamp_id BIGINT REFERENCES timestamps (id);
ALTER TABLE message_log ADD COLUMN ts_hash_chain BYTEA;
CREATE INDEX message_log_unstamped ON message_log (timestamp_id) WHERE timestamp_id IS NULL;
