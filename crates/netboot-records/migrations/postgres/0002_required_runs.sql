-- Required deployments machines ran (PostgreSQL): one row per machine and deployment,
-- written when the machine downloaded the deployment's boot image to the end, deleted when
-- an administrator clears it. Shared by every host that shares the records database.
CREATE TABLE required_runs (
    mac         TEXT    NOT NULL,
    deployment  TEXT    NOT NULL,
    uuid        TEXT,
    resource_id BIGINT,
    boot_image  TEXT,
    client_ip   TEXT,
    at_ms       BIGINT  NOT NULL,
    PRIMARY KEY (mac, deployment)
);
CREATE INDEX required_runs_uuid ON required_runs (uuid);
