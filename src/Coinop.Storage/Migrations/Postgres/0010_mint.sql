-- The Cashu mint. Amounts are sat; a note may be worth 2^63, so amounts are stored as the two's-complement
-- bit pattern of the unsigned value (read back unchanged); they are never summed in SQL.

-- The master seed every keyset's private keys derive from. It lives in the store so that every market
-- node sharing this store signs and verifies with the same keys.
CREATE TABLE mint_seed (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    seed            BYTEA NOT NULL
);

CREATE TABLE mint_keysets (
    id              TEXT PRIMARY KEY,
    unit            TEXT NOT NULL,
    derivation_index BIGINT NOT NULL UNIQUE,
    input_fee_ppk   BIGINT NOT NULL,
    max_order       INTEGER NOT NULL,
    active          INTEGER NOT NULL,
    created_at      BIGINT NOT NULL
);
-- At most one keyset per unit signs new outputs.
CREATE UNIQUE INDEX mint_keysets_one_active ON mint_keysets (unit) WHERE active = 1;

CREATE TABLE mint_quotes (
    id              TEXT PRIMARY KEY,
    method          TEXT NOT NULL,
    request         TEXT NOT NULL,
    payment_hash    TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    unit            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('UNPAID', 'PAID', 'ISSUED')),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    paid_at         BIGINT NULL,
    issued_at       BIGINT NULL
);

CREATE TABLE melt_quotes (
    id              TEXT PRIMARY KEY,
    method          TEXT NOT NULL,
    request         TEXT NOT NULL,
    payment_hash    TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    fee_reserve     BIGINT NOT NULL,
    unit            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('UNPAID', 'PENDING', 'PAID')),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    input_amount    BIGINT NULL,
    input_fee       BIGINT NULL,
    change_outputs  TEXT NULL,
    fee_paid        BIGINT NULL,
    payment_preimage TEXT NULL,
    change          TEXT NULL
);

-- The spent set and the per-proof locks: one row per Y = hash_to_curve(secret). The primary key makes a
-- second spend of the same proof impossible, across requests and market nodes. PENDING rows lock proofs
-- while a melt pays its invoice; they become SPENT or are deleted, never anything else.
CREATE TABLE mint_proofs (
    y               BYTEA PRIMARY KEY,
    keyset_id       TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    secret          TEXT NOT NULL,
    c               TEXT NOT NULL,
    witness         TEXT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'SPENT')),
    melt_quote_id   TEXT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX mint_proofs_by_melt ON mint_proofs (melt_quote_id) WHERE melt_quote_id IS NOT NULL;

-- Every signature the mint issued, by blinded message: a B_ is signed once (NUT-03/04), and NUT-09 restore
-- answers from here.
CREATE TABLE mint_signatures (
    b               BYTEA PRIMARY KEY,
    keyset_id       TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    c               TEXT NOT NULL,
    dleq_e          TEXT NOT NULL,
    dleq_s          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
