-- SIP registrations (bindings), shared by every signaling node on one directory.
-- Media relays register like any user agent, with an account of kind 'relay'
-- named like the relay, one contact per line whose user part is the line name.

CREATE TABLE registrations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- the address of record: user name within the tenant's domain
    aor         TEXT NOT NULL,
    contact     TEXT NOT NULL,
    -- the user part of the contact URI (a relay's line name)
    contact_user TEXT NOT NULL DEFAULT '',
    instance    TEXT NOT NULL DEFAULT '',
    -- the flow the REGISTER came over: where to send requests for this contact
    transport   TEXT NOT NULL,
    source      TEXT NOT NULL,
    node        TEXT NOT NULL,
    connection  TEXT NOT NULL DEFAULT '',
    call_id     TEXT NOT NULL,
    cseq        BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, aor, contact)
);

CREATE INDEX registrations_aor ON registrations (tenant_id, aor);
