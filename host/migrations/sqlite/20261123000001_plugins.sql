-- Uploaded plugin components, content-addressed. Built-in plugins load from the plugins
-- directory instead and are not stored here.
CREATE TABLE plugins (
    id          TEXT PRIMARY KEY,          -- sha256:<hex> of the component bytes
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    size        BIGINT NOT NULL,
    wasm        BLOB NOT NULL,
    manifest    TEXT NOT NULL,             -- validated manifest, JSON
    active      BIGINT NOT NULL DEFAULT 1, -- 0 after a newer version or a rollback replaced it
    created_at  BIGINT NOT NULL            -- ms since epoch
);
CREATE INDEX plugins_name ON plugins (name, created_at);
