-- The durable-work kernel: one row per unit of work (inference job, workload...), changed only by conditional
-- updates that name the row version and fence they read, and never once terminal. The CHECKs keep the shape honest:
-- a lease is whole or absent, a terminal item holds no lease, only abandoned items carry abandon evidence.
CREATE TABLE work_items (
    id                       TEXT PRIMARY KEY,
    kind                     TEXT NOT NULL,
    disposition              TEXT NOT NULL CHECK (disposition IN ('rerunnable', 'owner_bound', 'externally_owned')),
    fence                    INTEGER NOT NULL CHECK (fence >= 0),
    version                  INTEGER NOT NULL,
    lease_owner_id           TEXT NULL,
    lease_incarnation_id     TEXT NULL,
    lease_token              TEXT NULL,
    lease_claimed_at         INTEGER NULL,
    lease_expires_at         INTEGER NULL,
    started_owner_id         TEXT NULL,
    started_incarnation_id   TEXT NULL,
    started_at               INTEGER NULL,
    deadline                 INTEGER NULL,
    abandon_requested_by     TEXT NULL,
    abandon_requested_at     INTEGER NULL,
    abandon_reason           TEXT NULL,
    terminal                 TEXT NULL CHECK (terminal IN ('completed', 'failed', 'cancelled', 'abandoned')),
    terminal_at              INTEGER NULL,
    terminal_reason          TEXT NULL,
    abandon_writer           TEXT NULL CHECK (abandon_writer IN ('owner_drain', 'sweep', 'reconciled_request')),
    abandoned_owner_id       TEXT NULL,
    abandoned_incarnation_id TEXT NULL,
    abandon_evidence         TEXT NULL,
    progress                 TEXT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    CHECK ((lease_owner_id IS NULL) = (lease_token IS NULL)
       AND (lease_owner_id IS NULL) = (lease_incarnation_id IS NULL)
       AND (lease_owner_id IS NULL) = (lease_expires_at IS NULL)
       AND (lease_owner_id IS NULL) = (lease_claimed_at IS NULL)),
    CHECK (terminal IS NULL OR lease_owner_id IS NULL),
    CHECK ((terminal IS NULL) = (terminal_at IS NULL)),
    CHECK (abandon_writer IS NULL OR terminal = 'abandoned')
);

-- What the sweep and the drain look at: open items only.
CREATE INDEX work_items_open_lease ON work_items (lease_expires_at) WHERE terminal IS NULL;
CREATE INDEX work_items_open_owner ON work_items (lease_owner_id) WHERE terminal IS NULL;
CREATE INDEX work_items_open_started ON work_items (started_owner_id) WHERE terminal IS NULL;

-- Append-only history of every transition with the fence it produced and who wrote it (audit, workload history).
CREATE TABLE work_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    work_id          TEXT NOT NULL REFERENCES work_items (id),
    occurred_at      INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    fence            INTEGER NOT NULL,
    writer           TEXT NOT NULL,
    owner_id         TEXT NULL,
    incarnation_id   TEXT NULL,
    detail           TEXT NULL
);

CREATE INDEX work_events_by_item ON work_events (work_id, seq);
