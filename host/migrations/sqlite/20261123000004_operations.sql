-- Operations (issue 10): deliveries seen as tasks, named API tokens, the audit trail,
-- scheduled sends and retention settings. Times are ms since the epoch; JSON is text.

-- Tasks are the deliveries; these indexes serve their listings, filters and statistics.
ALTER TABLE deliveries ADD COLUMN resolved_at BIGINT; -- set when an operator resolved it by hand
CREATE INDEX deliveries_created ON deliveries (created_at, id);
CREATE INDEX deliveries_tenant_created ON deliveries (tenant_id, created_at, id);
CREATE INDEX deliveries_status_created ON deliveries (status, created_at);
CREATE INDEX events_tenant_topic_time ON events (tenant_id, topic, time);

-- Named admin API tokens (JWT). Only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,           -- also the token's `jti`
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    token_hash    TEXT NOT NULL,              -- hex SHA-256 of the whole token
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash);

-- Every mutating API call.
CREATE TABLE audit_entries (
    id           TEXT PRIMARY KEY,            -- ULID
    time         BIGINT NOT NULL,
    actor_type   TEXT NOT NULL,               -- admin | api_token | tenant
    actor        TEXT NOT NULL,               -- "admin", the token name, or the tenant id
    actor_id     TEXT,                        -- the token id for api_token
    tenant_id    TEXT,                        -- the tenant the call addressed, when known
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    category     TEXT NOT NULL,               -- first path segment after /api/v1
    status       BIGINT NOT NULL,
    ip_address   TEXT,
    request      TEXT,                        -- JSON with secrets removed, or a summary
    duration_ms  BIGINT NOT NULL
);
CREATE INDEX audit_entries_time ON audit_entries (time, id);
CREATE INDEX audit_entries_actor ON audit_entries (actor, time);
CREATE INDEX audit_entries_tenant ON audit_entries (tenant_id, time);

-- Scheduled sends: a stored message published to a tenant by cron, interval or once.
CREATE TABLE schedules (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name           TEXT NOT NULL DEFAULT '',
    cron           TEXT,                      -- cron expression, or
    interval_ms    BIGINT,                    -- a fixed interval, or
    run_at         BIGINT,                    -- one run at this time (delayed publish)
    timezone       TEXT NOT NULL DEFAULT 'UTC',
    topic          TEXT NOT NULL,
    data           TEXT NOT NULL,
    metadata       TEXT,
    destination_id TEXT,
    enabled        BIGINT NOT NULL DEFAULT 1,
    next_run_at    BIGINT,                    -- NULL when disabled or finished
    last_run_at    BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX schedules_due ON schedules (enabled, next_run_at);
CREATE INDEX schedules_tenant ON schedules (tenant_id, created_at, id);

CREATE TABLE schedule_runs (
    id            TEXT PRIMARY KEY,
    schedule_id   TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    scheduled_for BIGINT NOT NULL,
    ran_at        BIGINT NOT NULL,
    event_id      TEXT,
    status        TEXT NOT NULL,              -- published | duplicate | failed
    missed        BIGINT NOT NULL DEFAULT 0,  -- slots skipped by the missed-run policy
    error         TEXT
);
CREATE UNIQUE INDEX schedule_runs_slot ON schedule_runs (schedule_id, scheduled_for);
CREATE INDEX schedule_runs_time ON schedule_runs (schedule_id, ran_at, id);

-- Retention: `scope` is '*' (global) or a tenant id; durations in ms, NULL = keep forever.
CREATE TABLE retention_policies (
    scope        TEXT PRIMARY KEY,
    events_ms    BIGINT,
    attempts_ms  BIGINT,
    audit_ms     BIGINT,
    updated_at   BIGINT NOT NULL
);
