-- Integration layer (issue 7): configurations of prototypes with their history,
-- environment variables, and transformer chains on tenant destinations.
-- Times are ms since the epoch; JSON is text; secrets are ciphertext.

-- A named, validated instance of a prototype (`type` is the prototype kind).
CREATE TABLE configurations (
    type         TEXT NOT NULL,              -- destination | transformer
    identifier   TEXT NOT NULL,              -- ^[a-z0-9]+[a-z0-9-]*[a-z0-9]+$
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    prototype    TEXT NOT NULL,
    parameters   TEXT NOT NULL,              -- JSON object; sensitive values sealed
    labels       TEXT NOT NULL DEFAULT '[]', -- JSON array of strings
    disabled     BIGINT NOT NULL DEFAULT 0,
    editor       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (type, identifier)
);
CREATE INDEX configurations_prototype ON configurations (type, prototype);

-- Every state a configuration had, keyed by a ULID (time-ordered).
CREATE TABLE configuration_history (
    ulid        TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    identifier  TEXT NOT NULL,
    action      TEXT NOT NULL,               -- create | update | restore | delete | import
    state       TEXT NOT NULL,               -- JSON: name, description, object, disabled, labels
    editor      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX configuration_history_by_config ON configuration_history (type, identifier, ulid);

-- `${NAME}` values for configurations; `value` is ciphertext when `encrypted` is 1.
CREATE TABLE environment_variables (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    value       TEXT NOT NULL,
    encrypted   BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Ordered transformer configuration identifiers a tenant destination's events pass
-- through (JSON array), or NULL.
ALTER TABLE destinations ADD COLUMN transformers TEXT;
