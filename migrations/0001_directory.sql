-- offhook directory schema. One file for SQLite and PostgreSQL alike: ids are
-- application-generated text, times are Unix milliseconds (BIGINT), flags are
-- BIGINT 0/1 (sqlx's Any driver has no SQLite BOOLEAN), lists are newline-separated TEXT.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    sip_domain  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    number        TEXT,
    -- digest credentials: HA1 = H(username:realm:password), never the password
    ha1_md5       TEXT NOT NULL,
    ha1_sha256    TEXT NOT NULL,
    kind          TEXT NOT NULL DEFAULT 'user',
    enabled       BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE icons (
    id                   TEXT PRIMARY KEY,
    public_id            TEXT NOT NULL UNIQUE,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    number               TEXT NOT NULL,
    label                TEXT NOT NULL,
    enabled              BIGINT NOT NULL DEFAULT 1,
    allowed_origins      TEXT NOT NULL DEFAULT '',
    opening_hours        TEXT NOT NULL DEFAULT '',
    timezone             TEXT NOT NULL DEFAULT 'UTC',
    max_concurrent_calls BIGINT NOT NULL DEFAULT 2,
    calls_per_minute     BIGINT NOT NULL DEFAULT 10,
    created_at           BIGINT NOT NULL
);

CREATE TABLE relays (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    sip_uri      TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'unknown',
    last_seen_at BIGINT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE lines (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    relay_id    TEXT NOT NULL REFERENCES relays(id) ON DELETE CASCADE,
    -- NULL: a shared line of the ISP, usable by every tenant
    tenant_id   TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    device_path TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'idle',
    created_at  BIGINT NOT NULL
);

CREATE TABLE cdrs (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    icon_id       TEXT REFERENCES icons(id) ON DELETE SET NULL,
    account_id    TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    call_id       TEXT NOT NULL,
    number        TEXT NOT NULL,
    line_id       TEXT REFERENCES lines(id) ON DELETE SET NULL,
    started_at    BIGINT NOT NULL,
    answered_at   BIGINT,
    ended_at      BIGINT,
    answer_source TEXT,
    hangup_cause  TEXT
);

CREATE INDEX cdrs_tenant_started ON cdrs (tenant_id, started_at);
CREATE INDEX cdrs_call_id ON cdrs (call_id);
CREATE INDEX accounts_number ON accounts (tenant_id, number);
CREATE INDEX lines_relay ON lines (relay_id);
