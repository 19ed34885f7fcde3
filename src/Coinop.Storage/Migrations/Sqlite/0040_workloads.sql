-- Workloads: the state machine's record of each workload (written only by compare-and-set on version, never again
-- once terminal), its append-only history, its standbys, the checkpoint keys the consumer sealed to providers, the
-- providers' signed usage records, encrypted checkpoints, sealed access receipts and a bounded tail of its output.
-- Usage, checkpoints and receipts are inserted only while the kernel row (work_items) still holds the copy's epoch as
-- its fence with that provider as the lease holder, so a revoked copy can write none of them.
CREATE TABLE workloads (
    id                    TEXT PRIMARY KEY,
    version               BIGINT NOT NULL,
    command               TEXT NOT NULL,
    args                  TEXT NOT NULL,
    cpu_cores             REAL NOT NULL CHECK (cpu_cores > 0),
    memory_mb             BIGINT NOT NULL CHECK (memory_mb > 0),
    duration_ms           BIGINT NOT NULL CHECK (duration_ms > 0),
    port                  INTEGER NULL,
    restart               TEXT NOT NULL,
    standbys_wanted       INTEGER NOT NULL CHECK (standbys_wanted >= 0),
    checkpointed          INTEGER NOT NULL,
    pinned_provider       TEXT NULL,
    seal_to               TEXT NULL,
    rate_msat_per_second  TEXT NOT NULL,
    paid_msat             BIGINT NOT NULL CHECK (paid_msat >= 0),
    refund_msat           BIGINT NULL CHECK (refund_msat >= 0),
    refund_token          TEXT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('provisioning', 'live', 'suspect', 'evicted', 'respawning', 'failed', 'completed', 'cancelled')),
    since                 BIGINT NOT NULL,
    reason                TEXT NULL,
    provider              TEXT NULL,
    epoch                 BIGINT NOT NULL CHECK (epoch >= 1),
    revoking_provider     TEXT NULL,
    revoking_epoch        BIGINT NULL,
    revoking_crashed      INTEGER NULL,
    last_contact          BIGINT NOT NULL,
    attempts              INTEGER NOT NULL CHECK (attempts >= 0),
    paid_until            BIGINT NOT NULL,
    checkpoint_id         TEXT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    CHECK ((revoking_provider IS NULL) = (revoking_epoch IS NULL) AND (revoking_epoch IS NULL) = (revoking_crashed IS NULL))
);

CREATE INDEX workloads_open ON workloads (created_at) WHERE state NOT IN ('failed', 'completed', 'cancelled');

CREATE TABLE workload_history (
    workload_id   TEXT NOT NULL REFERENCES workloads (id),
    seq           INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('provisioning', 'live', 'suspect', 'evicted', 'respawning', 'failed', 'completed', 'cancelled')),
    provider      TEXT NULL,
    at            BIGINT NOT NULL,
    PRIMARY KEY (workload_id, seq)
);

CREATE TABLE workload_standbys (
    workload_id   TEXT NOT NULL REFERENCES workloads (id),
    provider_id   TEXT NOT NULL,
    last_heard    BIGINT NOT NULL,
    PRIMARY KEY (workload_id, provider_id)
);

CREATE TABLE workload_keys (
    workload_id   TEXT NOT NULL REFERENCES workloads (id),
    provider_id   TEXT NOT NULL,
    sealed_key    TEXT NOT NULL,
    PRIMARY KEY (workload_id, provider_id)
);

CREATE TABLE workload_usage (
    workload_id          TEXT NOT NULL REFERENCES workloads (id),
    epoch                BIGINT NOT NULL,
    window_start         BIGINT NOT NULL,
    window_end           BIGINT NOT NULL CHECK (window_end >= window_start),
    provider_id          TEXT NOT NULL,
    cpu_core_seconds     REAL NOT NULL,
    memory_mib_seconds   REAL NOT NULL,
    net_bytes            BIGINT NOT NULL,
    wall_seconds         REAL NOT NULL,
    payload              TEXT NOT NULL,
    signature            TEXT NOT NULL,
    public_key           TEXT NOT NULL,
    received_at          BIGINT NOT NULL,
    PRIMARY KEY (workload_id, epoch, window_start)
);

CREATE TABLE workload_checkpoints (
    id            TEXT PRIMARY KEY,
    workload_id   TEXT NOT NULL REFERENCES workloads (id),
    epoch         BIGINT NOT NULL,
    provider_id   TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    data          BLOB NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE INDEX workload_checkpoints_by_workload ON workload_checkpoints (workload_id, created_at);

CREATE TABLE workload_receipts (
    workload_id   TEXT NOT NULL REFERENCES workloads (id),
    epoch         BIGINT NOT NULL,
    provider_id   TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (workload_id, epoch)
);

CREATE TABLE workload_logs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    workload_id   TEXT NOT NULL REFERENCES workloads (id),
    epoch         BIGINT NOT NULL,
    stream        TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    at            BIGINT NOT NULL,
    data          BLOB NOT NULL
);

CREATE INDEX workload_logs_by_workload ON workload_logs (workload_id, seq);
