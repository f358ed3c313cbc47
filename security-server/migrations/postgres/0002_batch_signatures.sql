-- Batch signatures: the hash chain result the signature covers and the
-- message's own hash chain (both NULL for a plain signature).
ALTER TABLE message_log ADD COLUMN hash_chain_result BYTEA;
ALTER TABLE message_log ADD COLUMN hash_chain BYTEA;
