-- The server configuration (X-Road's serverconf): service descriptions
-- added from WSDLs with their services, local groups, and access rights.
CREATE TABLE service_descriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client TEXT NOT NULL,
    url TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    disabled_notice TEXT,
    refreshed_at BIGINT NOT NULL,
    UNIQUE (client, url)
);
CREATE TABLE services (
    description_id BIGINT NOT NULL,
    client TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    title TEXT,
    url TEXT NOT NULL,
    timeout_secs BIGINT NOT NULL DEFAULT 60,
    ssl_verify BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (client, code, version)
);
CREATE TABLE local_groups (
    client TEXT NOT NULL, code TEXT NOT NULL, description TEXT NOT NULL,
    PRIMARY KEY (client, code)
);
CREATE TABLE local_group_members (
    client TEXT NOT NULL, code TEXT NOT NULL, member TEXT NOT NULL,
    PRIMARY KEY (client, code, member)
);
CREATE TABLE access_rights (
    client TEXT NOT NULL, service_code TEXT NOT NULL, subject TEXT NOT NULL, granted_at BIGINT NOT NULL,
    PRIMARY KEY (client, service_code, subject)
);
