-- Provider identities and enrollment codes.
CREATE TABLE providers (
    id              TEXT PRIMARY KEY,
    public_key      BLOB NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    enrolled_at     INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    online          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE enrollment_codes (
    code            TEXT PRIMARY KEY,
    max_uses        INTEGER NOT NULL,
    uses            INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NULL
);

-- Market-wide settings shared by every node (market id, keyset rotation state...).
CREATE TABLE market_meta (
    key             TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);
