-- Attachments of a logged message (length-prefixed parts), so its container
-- holds every part the signature covers.
ALTER TABLE message_log ADD COLUMN attachments BLOB;
