-- Required deployments machines ran (SQLite): one row per machine and deployment, written
-- when the machine downloaded the deployment's boot image to the end, deleted when an
-- administrator clears it. Also the whole schema of the standalone file in https.state_dir.
CREATE TABLE required_runs (
    mac         TEXT    NOT NULL,
    deployment  TEXT    NOT NULL,
    uuid        TEXT,
    resource_id INTEGER,
    boot_image  TEXT,
    client_ip   TEXT,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (mac, deployment)
);
CREATE INDEX required_runs_uuid ON required_runs (uuid);
