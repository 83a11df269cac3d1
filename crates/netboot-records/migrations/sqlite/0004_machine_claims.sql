-- What clients claimed about a machine (manufacturer, product, serial number, asset tag),
-- from which address and when. Any client can claim anything for any MAC, so a new claim
-- is added beside the earlier ones instead of replacing them; the machine row keeps the
-- first value. The writer keeps at most a fixed number of claims per machine.
CREATE TABLE machine_claims (
    mac TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    times BIGINT NOT NULL,
    PRIMARY KEY (mac, field, value, source)
);
