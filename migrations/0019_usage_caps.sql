-- Monthly call caps and billed-minute caps on top of 0018's daily call caps:
-- calls started in one UTC calendar month, and billed minutes (answered
-- duration, from the CDRs; calls still running count up to now) in one UTC
-- day and month, of all of a tenant's calls and through each of its icons or
-- accounts. A call over one is refused at setup; an answered call is ended
-- (cause budget-exhausted) when it uses up the smallest remaining budget.
ALTER TABLE destination_policies ADD COLUMN tenant_calls_per_month BIGINT NOT NULL DEFAULT 20000;
ALTER TABLE destination_policies ADD COLUMN calls_per_month BIGINT NOT NULL DEFAULT 4000;
ALTER TABLE destination_policies ADD COLUMN tenant_minutes_per_day BIGINT NOT NULL DEFAULT 6000;
ALTER TABLE destination_policies ADD COLUMN minutes_per_day BIGINT NOT NULL DEFAULT 1200;
ALTER TABLE destination_policies ADD COLUMN tenant_minutes_per_month BIGINT NOT NULL DEFAULT 120000;
ALTER TABLE destination_policies ADD COLUMN minutes_per_month BIGINT NOT NULL DEFAULT 24000;
