-- Several market nodes on one store. Each node registers itself and heartbeats; a node counts as alive while its last
-- heartbeat has not expired (every node reads the same rows with the same rule, so they agree without talking).
CREATE TABLE market_nodes (
    node_id         TEXT PRIMARY KEY,
    incarnation     TEXT NOT NULL,
    node_url        TEXT NOT NULL,
    public_url      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('ready', 'draining', 'left')),
    started_at      INTEGER NOT NULL,
    heartbeat_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

-- Which node holds each provider's WebSocket link, under which fencing epoch. A provider that links again (to any node)
-- moves the epoch on; writes made for it under an older epoch are refused (settlement checks the epoch in its own
-- transaction). The holder publishes what routing needs here (offers, load, parking), so every node routes over the
-- union of providers and forwards a job to the node that holds its provider.
CREATE TABLE provider_links (
    provider_id     TEXT PRIMARY KEY,
    node_id         TEXT NOT NULL,
    epoch           INTEGER NOT NULL CHECK (epoch >= 1),
    linked_at       INTEGER NOT NULL,
    closed_at       INTEGER NULL,
    name            TEXT NOT NULL,
    capabilities    TEXT NULL,
    capabilities_version INTEGER NOT NULL DEFAULT 0,
    accepting       INTEGER NOT NULL DEFAULT 0,
    in_flight       INTEGER NOT NULL DEFAULT 0,
    latency_ms      REAL NOT NULL DEFAULT 0,
    parked_until    INTEGER NULL,
    load_figures    TEXT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX provider_links_open ON provider_links (node_id) WHERE closed_at IS NULL;
