-- Usage counters (directory/src/usage_counters.rs): per tenant, icon and
-- account and UTC day of the calls' start (days since the epoch), the calls
-- started and the billed time (answered to ended, ms) of those that ended,
-- kept with every CDR write; what the caps read instead of scanning the
-- month's CDRs. Counted here from the CDRs written before.
CREATE TABLE usage_days (
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    utc_day BIGINT NOT NULL,
    calls BIGINT NOT NULL DEFAULT 0,
    billed_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, subject_id, utc_day)
);
INSERT INTO usage_days (kind, subject_id, utc_day, calls, billed_ms)
SELECT 'tenant', tenant_id, started_at / 86400000, COUNT(*),
       COALESCE(SUM(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL THEN ended_at - answered_at ELSE 0 END), 0)
FROM cdrs GROUP BY tenant_id, started_at / 86400000;
INSERT INTO usage_days (kind, subject_id, utc_day, calls, billed_ms)
SELECT 'icon', icon_id, started_at / 86400000, COUNT(*),
       COALESCE(SUM(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL THEN ended_at - answered_at ELSE 0 END), 0)
FROM cdrs WHERE icon_id IS NOT NULL GROUP BY icon_id, started_at / 86400000;
INSERT INTO usage_days (kind, subject_id, utc_day, calls, billed_ms)
SELECT 'account', account_id, started_at / 86400000, COUNT(*),
       COALESCE(SUM(CASE WHEN answered_at IS NOT NULL AND ended_at IS NOT NULL THEN ended_at - answered_at ELSE 0 END), 0)
FROM cdrs WHERE account_id IS NOT NULL GROUP BY account_id, started_at / 86400000;
-- A tenant's calls still open, billed up to now when its use is read.
CREATE INDEX cdrs_open_tenant ON cdrs (tenant_id) WHERE ended_at IS NULL;
