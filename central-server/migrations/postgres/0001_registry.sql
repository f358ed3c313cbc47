-- The central server's registry: who is in the network and whom it trusts.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE member_classes (code TEXT PRIMARY KEY, description TEXT NOT NULL);
CREATE TABLE members (
    class TEXT NOT NULL, code TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (class, code)
);
CREATE TABLE subsystems (
    class TEXT NOT NULL, code TEXT NOT NULL, subsystem TEXT NOT NULL,
    PRIMARY KEY (class, code, subsystem)
);
CREATE TABLE servers (
    owner_class TEXT NOT NULL, owner_code TEXT NOT NULL, server_code TEXT NOT NULL,
    address TEXT NOT NULL, in_maintenance BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_class, owner_code, server_code)
);
CREATE TABLE server_auth_certs (
    owner_class TEXT NOT NULL, owner_code TEXT NOT NULL, server_code TEXT NOT NULL, cert_hash TEXT NOT NULL,
    PRIMARY KEY (owner_class, owner_code, server_code, cert_hash)
);
CREATE TABLE server_clients (
    owner_class TEXT NOT NULL, owner_code TEXT NOT NULL, server_code TEXT NOT NULL, client TEXT NOT NULL,
    PRIMARY KEY (owner_class, owner_code, server_code, client)
);
CREATE TABLE global_groups (code TEXT PRIMARY KEY, description TEXT NOT NULL);
CREATE TABLE group_members (code TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (code, member));
CREATE TABLE cas (
    name TEXT PRIMARY KEY, cert BYTEA NOT NULL, profile_info TEXT, authentication_only BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE ca_ocsp (ca TEXT NOT NULL, url TEXT NOT NULL, cert BYTEA, PRIMARY KEY (ca, url));
CREATE TABLE tsas (name TEXT PRIMARY KEY, url TEXT NOT NULL, cert BYTEA NOT NULL);
-- Configuration signing keys (the private keys are files in the state directory,
-- mode 0600): announced ones are listed in <source>; the active one signs.
CREATE TABLE signing_keys (
    id BIGSERIAL PRIMARY KEY, cert BYTEA NOT NULL,
    active BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL
);
