-- The message log: every request and response a proxy handled, stored before
-- the response is released.
CREATE TABLE message_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    query_id    TEXT    NOT NULL,
    client      TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    side        TEXT    NOT NULL CHECK (side IN ('client', 'server')),
    direction   TEXT    NOT NULL CHECK (direction IN ('request', 'response')),
    message     BLOB    NOT NULL,
    signature   BLOB    NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX message_log_query_id ON message_log (query_id);
