-- Devices found on the LAN, by stable id (0x83 identification number where
-- the device has one, guideline §2.8), with what they said about themselves.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    eoj TEXT NOT NULL,
    class INTEGER NOT NULL,
    manufacturer TEXT NOT NULL DEFAULT '',
    get_map BLOB NOT NULL,
    set_map BLOB NOT NULL,
    inf_map BLOB NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    approved INTEGER NOT NULL DEFAULT 0,
    send_only INTEGER NOT NULL DEFAULT 0,
    alive INTEGER NOT NULL DEFAULT 1,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);

-- Who approved or revoked what, and when: the consent trail.
CREATE TABLE approvals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    approved INTEGER NOT NULL,
    by_whom TEXT NOT NULL,
    at INTEGER NOT NULL
);

-- Status changes devices announced (INF).
CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    epc INTEGER NOT NULL,
    edt BLOB NOT NULL,
    at INTEGER NOT NULL
);

-- Webhooks consumers registered, and every delivery attempt.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created INTEGER NOT NULL
);

CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook TEXT NOT NULL,
    notification INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    at INTEGER NOT NULL
);
