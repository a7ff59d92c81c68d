-- Toll-fraud policy per tenant: which numbers its icons and accounts may dial
-- (allow/deny prefix lists, newline-separated, on top of the built-in defaults
-- that deny international access codes, international premium and shared-cost
-- ranges and national premium rate; see directory/src/policy.rs), how many
-- of its calls may run at once, and how many calls may start in one UTC day
-- (all of the tenant's, and through each of its icons or accounts; counted
-- from the CDRs). A tenant without a row has the defaults.
CREATE TABLE destination_policies (
    tenant_id            TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    allow                TEXT NOT NULL DEFAULT '',
    deny                 TEXT NOT NULL DEFAULT '',
    max_concurrent_calls BIGINT NOT NULL DEFAULT 10,
    tenant_calls_per_day BIGINT NOT NULL DEFAULT 1000,
    calls_per_day        BIGINT NOT NULL DEFAULT 200,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX cdrs_icon_started ON cdrs (icon_id, started_at);
CREATE INDEX cdrs_account_started ON cdrs (account_id, started_at);
