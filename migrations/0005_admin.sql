-- Administration: API tokens of the operator (ISP) and of tenant admins, kept as
-- SHA-256 hashes only (a token is shown once, when it is made); and the counters
-- each process publishes (SIP messages, RTP packets, jitter buffers), so that the
-- web process's /metrics reports every node of the shared directory.

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    -- NULL: an operator token; otherwise a tenant admin's
    tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE node_metrics (
    node        TEXT NOT NULL,
    name        TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '',
    value       BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (node, name, labels)
);
