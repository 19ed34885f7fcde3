-- One row per inference job: who served it, how it went, what it cost.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    model           TEXT NOT NULL,
    wire_format     TEXT NOT NULL,
    route           TEXT NOT NULL,
    provider_id     TEXT NULL,
    attempts        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    first_byte_at   BIGINT NULL,
    finished_at     BIGINT NOT NULL,
    input_tokens    BIGINT NOT NULL DEFAULT 0,
    output_tokens   BIGINT NOT NULL DEFAULT 0,
    outcome         TEXT NOT NULL,
    error_code      TEXT NULL,
    cost_msat       BIGINT NULL
);

CREATE INDEX jobs_created_at ON jobs (created_at);
CREATE INDEX jobs_provider ON jobs (provider_id, created_at);
