-- Boot events and the machine records derived from them (SQLite).
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    mac         TEXT    NOT NULL,
    uuid        TEXT,
    client_ip   TEXT,
    stage       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    ok          INTEGER NOT NULL,
    boot_start  INTEGER NOT NULL,
    arch        TEXT,
    duration_ms INTEGER,
    detail      TEXT    NOT NULL
);
CREATE INDEX events_mac_at ON events (mac, at_ms);
CREATE INDEX events_at ON events (at_ms);
CREATE INDEX events_failures ON events (ok, at_ms);
CREATE INDEX events_client_ip ON events (client_ip, at_ms);

CREATE TABLE machines (
    mac           TEXT PRIMARY KEY,
    uuid          TEXT,
    firmware      TEXT,
    arches        TEXT    NOT NULL DEFAULT '',
    nic           TEXT,
    ipxe_platform TEXT,
    ipxe_features TEXT,
    tls           INTEGER,
    manufacturer  TEXT,
    product       TEXT,
    serial        TEXT,
    asset         TEXT,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    boot_count    INTEGER NOT NULL DEFAULT 0,
    last_outcome  TEXT    NOT NULL
);
CREATE INDEX machines_last_seen ON machines (last_seen_ms);
CREATE INDEX machines_uuid ON machines (uuid);
CREATE INDEX machines_serial ON machines (serial);
