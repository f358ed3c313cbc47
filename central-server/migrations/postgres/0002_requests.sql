-- Management requests from security servers (X-Road's PR-MSERV): pending
-- until a registration officer approves or rejects them.
CREATE TABLE requests (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_class TEXT NOT NULL, owner_code TEXT NOT NULL, server_code TEXT NOT NULL,
    client TEXT, address TEXT, auth_cert BYTEA,
    status TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    decided_at BIGINT, decided_by TEXT, reason TEXT
);
CREATE INDEX requests_status ON requests (status);
