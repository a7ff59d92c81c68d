-- Toll-fraud policy per tenant: which numbers its icons and accounts may dial
-- (allow/deny prefix lists, newline-separated, on top of the built-in defaults
-- that deny international access codes, international premium and shared-cost
-- ranges and national premium rate; see directory/src/policy.rs), and how many
-- of its calls may run at once. A tenant without a row has the defaults.
CREATE TABLE destination_policies (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    allow                TEXT NOT NULL DEFAULT '',
    deny                 TEXT NOT NULL DEFAULT '',
    max_concurrent_calls BIGINT NOT NULL DEFAULT 10,
    updated_at           BIGINT NOT NULL
);
