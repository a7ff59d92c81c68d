-- Who holds what a call holds: each start of a signaling node is an owner (an
-- incarnation) with a lease it refreshes while it lives; the CDRs it opens and
-- the lines it claims name it. When an owner's lease runs out (it died) or the
-- same node starts again, whoever notices first (the restarted node at start,
-- or any node on its timer) ends its open CDRs as `node-lost` at the last time
-- it was known alive, releases its lines, and removes it.
CREATE TABLE owners (
    id         TEXT PRIMARY KEY,
    -- `node` (the only kind so far)
    kind       TEXT NOT NULL,
    -- the node's configured name: a new start of the same name ends the old one
    name       TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    -- the last lease refresh (Unix ms): the last evidence its calls were alive
    alive_at   BIGINT NOT NULL,
    -- how long a refresh holds, ms
    lease_ms   BIGINT NOT NULL
);
CREATE INDEX owners_name ON owners (kind, name);

ALTER TABLE cdrs ADD COLUMN owner_id TEXT;
CREATE INDEX cdrs_open_owner ON cdrs (owner_id) WHERE ended_at IS NULL;

ALTER TABLE lines ADD COLUMN owner_id TEXT;
CREATE INDEX lines_owner ON lines (owner_id);
