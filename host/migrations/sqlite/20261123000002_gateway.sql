-- Event gateway: tenants, their destinations, events, deliveries (the durable queue) and
-- attempts. Times are ms since the epoch; JSON is text; secrets are ciphertext.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    metadata    TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE destinations (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type               TEXT NOT NULL,
    topics             TEXT NOT NULL,       -- JSON: ["*"] or a list
    filter             TEXT,                -- JSON filter or NULL
    config             TEXT NOT NULL,       -- JSON object as the client sent it
    credentials        TEXT NOT NULL,       -- enc:v1:... ciphertext of the JSON object
    delivery_metadata  TEXT,
    metadata           TEXT,
    disabled_at        BIGINT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX destinations_tenant ON destinations (tenant_id, created_at);

CREATE TABLE events (
    tenant_id          TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                 TEXT NOT NULL,
    topic              TEXT NOT NULL,
    time               BIGINT NOT NULL,
    metadata           TEXT,
    data               TEXT NOT NULL,
    eligible_for_retry BIGINT NOT NULL,
    destination_id     TEXT,                -- set when published to one destination
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_time ON events (time, id);
CREATE INDEX events_tenant_time ON events (tenant_id, time, id);

-- One row per (event, destination): the queue. `status`: pending | processing |
-- success | failed | skipped. Workers claim due pending rows by setting a lease.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    destination_id  TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    lease_owner     TEXT,
    last_error      TEXT,
    manual_retry    BIGINT NOT NULL DEFAULT 0, -- next attempt was asked for by hand
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX deliveries_event_destination ON deliveries (tenant_id, event_id, destination_id);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_destination ON deliveries (destination_id, created_at);

CREATE TABLE attempts (
    id                   TEXT PRIMARY KEY,
    delivery_id          TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    tenant_id            TEXT NOT NULL,
    event_id             TEXT NOT NULL,
    destination_id       TEXT NOT NULL,
    attempt_number       BIGINT NOT NULL,
    manual               BIGINT NOT NULL DEFAULT 0, -- 1 for a manual retry
    status               TEXT NOT NULL,     -- success | failed
    response_status_code BIGINT,
    response_body        TEXT,
    error                TEXT,
    error_kind           TEXT,              -- retry | fail | misconfigured | timeout | trap | memory | denied
    duration_ms          BIGINT NOT NULL,
    plugin_id            TEXT,
    plugin_version       TEXT,
    time                 BIGINT NOT NULL
);
CREATE INDEX attempts_time ON attempts (time, id);
CREATE INDEX attempts_tenant_time ON attempts (tenant_id, time, id);
CREATE INDEX attempts_destination ON attempts (destination_id, time, id);
CREATE INDEX attempts_event ON attempts (tenant_id, event_id, time);
