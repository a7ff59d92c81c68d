-- Shared secrets (e.g. the key that signs call tokens, the same for every node)
-- and the call tokens already used: a token places one call only.

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE used_call_tokens (
    nonce      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
