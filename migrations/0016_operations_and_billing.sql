-- What operators, tenant admins and billing systems need beside the calls: an
-- icon's own ring timeout, why a line is in fault and since when, the RTCP
-- figures of a call, the audit log, operator requests (hang up a call, reset a
-- line) that the node owning the call or line carries out, and per-tenant
-- webhooks with their durable outbox (filled in the transaction that writes the
-- CDR change, delivered by the web nodes under a lease).

-- NULL: the relay's own no-answer timeout (media.no_answer_s).
ALTER TABLE icons ADD COLUMN ring_timeout_s BIGINT;

-- Why the line is in `fault` (NULL otherwise), and when its state last changed.
ALTER TABLE lines ADD COLUMN fault_reason TEXT;
ALTER TABLE lines ADD COLUMN state_changed_at BIGINT;

-- The far end's RTCP receiver reports about our stream, last word of the call.
ALTER TABLE cdrs ADD COLUMN rtcp_loss_permille BIGINT;
ALTER TABLE cdrs ADD COLUMN rtcp_lost_packets BIGINT;
ALTER TABLE cdrs ADD COLUMN rtcp_jitter_ms BIGINT;
ALTER TABLE cdrs ADD COLUMN rtcp_rtt_ms BIGINT;

-- Who changed what, when. No foreign keys: an entry outlives what it names
-- (the deletion of a tenant is itself an entry).
CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    at              BIGINT NOT NULL,
    -- the API token's name, or `cli:USER` for the command line
    actor           TEXT NOT NULL,
    actor_token_id  TEXT,
    -- the actor's tenant (a tenant admin); NULL for the operator and the CLI
    actor_tenant_id TEXT,
    -- the tenant the object belongs to; NULL for the ISP's own (relays, shared lines)
    tenant_id       TEXT,
    action          TEXT NOT NULL,
    object_kind     TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    -- JSON: the fields set, or the object removed (never a secret)
    changes         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

-- Requests of an operator or tenant admin that the owner of a call or line
-- carries out: it claims one (claimed_by, claim_until), then completes it.
CREATE TABLE operator_actions (
    id           TEXT PRIMARY KEY,
    -- `hangup-call` (target: a CDR id) or `reset-line` (target: a line id)
    kind         TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    -- what the requester saw: the line's name, the call's number and start
    target_label TEXT NOT NULL,
    tenant_id    TEXT,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    -- a request nobody completed by then ends with result `expired`
    expires_at   BIGINT NOT NULL,
    claimed_by   TEXT,
    claim_until  BIGINT,
    done_at      BIGINT,
    -- `done`, `failed`, `not-found` or `expired`
    result       TEXT,
    detail       TEXT NOT NULL DEFAULT ''
);
-- One open request per target: asking again returns the open one.
CREATE UNIQUE INDEX operator_actions_open ON operator_actions (kind, target_id) WHERE done_at IS NULL;
CREATE INDEX operator_actions_requested ON operator_actions (requested_at);

CREATE TABLE webhooks (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    -- the HMAC-SHA256 key of the signatures; shown once, when made or rotated
    secret         TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    on_call_start  BIGINT NOT NULL DEFAULT 0,
    on_call_answer BIGINT NOT NULL DEFAULT 0,
    on_call_end    BIGINT NOT NULL DEFAULT 1,
    enabled        BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id);

-- The outbox: one row per webhook, call and event (the id says which, so a
-- batch written twice adds nothing).
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    event           TEXT NOT NULL,
    cdr_id          TEXT NOT NULL REFERENCES cdrs(id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    -- `pending`, `delivered` or `failed` (gave up; can be retried by hand)
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
