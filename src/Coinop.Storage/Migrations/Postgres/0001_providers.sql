-- Provider identities and enrollment codes.
CREATE TABLE providers (
    id              TEXT PRIMARY KEY,
    public_key      BYTEA NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    enrolled_at     BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    online          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE enrollment_codes (
    code            TEXT PRIMARY KEY,
    max_uses        INTEGER NOT NULL,
    uses            INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NULL
);

-- Market-wide settings shared by every node (market id, keyset rotation state...).
CREATE TABLE market_meta (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);
