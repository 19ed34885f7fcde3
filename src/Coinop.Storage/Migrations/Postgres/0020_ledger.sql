-- The ledger: every msat the market accepted, where it is now. Double entry: each entry moves an amount from one
-- account to another, and the account rows carry running totals updated in the same transaction, so the books
-- balance at every commit. The CHECKs make the invariants part of the schema:
--   * only the source account ('received', money that came in from outside) may go below zero;
--   * a clearing account ('spent') is credited and debited by the same amount in every transaction that touches it,
--     so what was spent always equals what providers earned plus the market fee.
CREATE TABLE ledger_accounts (
    account         TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('source', 'balance', 'hold', 'clearing', 'provider', 'sink')),
    credited_msat   BIGINT NOT NULL DEFAULT 0 CHECK (credited_msat >= 0),
    debited_msat    BIGINT NOT NULL DEFAULT 0 CHECK (debited_msat >= 0),
    created_at      BIGINT NOT NULL,
    CHECK (kind = 'source' OR debited_msat <= credited_msat),
    CHECK (kind <> 'source' OR credited_msat = 0),
    CHECK (kind <> 'clearing' OR debited_msat = credited_msat)
);
CREATE INDEX ledger_accounts_kind ON ledger_accounts (kind);

INSERT INTO ledger_accounts (account, kind, created_at) VALUES
    ('received', 'source', 0),
    ('holds', 'hold', 0),
    ('spent', 'clearing', 0),
    ('fee', 'sink', 0),
    ('refunded', 'sink', 0),
    ('paid_out', 'sink', 0);

-- Append-only: the triggers refuse any change to a written entry.
CREATE TABLE ledger_entries (
    id              BIGSERIAL PRIMARY KEY,
    at              BIGINT NOT NULL,
    event           TEXT NOT NULL,
    reference       TEXT NOT NULL,
    from_account    TEXT NOT NULL REFERENCES ledger_accounts (account),
    to_account      TEXT NOT NULL REFERENCES ledger_accounts (account),
    amount_msat     BIGINT NOT NULL CHECK (amount_msat > 0),
    CHECK (from_account <> to_account)
);
CREATE INDEX ledger_entries_reference ON ledger_entries (reference);

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only';
END;
$$;

CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- One row per paid request: what is held for it in the 'holds' account and what became of it. HELD changes
-- once, to SETTLED or RELEASED, by a conditional update: a request is settled or released exactly once.
-- release_to is the balance the hold returns to when its request dies with its market node.
CREATE TABLE payment_holds (
    request_id      TEXT PRIMARY KEY,
    node_id         TEXT NOT NULL,
    payer           TEXT NOT NULL CHECK (payer IN ('token', 'balance')),
    release_to      TEXT NOT NULL,
    amount_msat     BIGINT NOT NULL CHECK (amount_msat > 0),
    state           TEXT NOT NULL CHECK (state IN ('HELD', 'SETTLED', 'RELEASED')),
    created_at      BIGINT NOT NULL,
    closed_at       BIGINT NULL,
    cost_msat       BIGINT NULL,
    provider_id     TEXT NULL,
    change_sat      BIGINT NULL,
    change_token    TEXT NULL
);
CREATE INDEX payment_holds_held ON payment_holds (node_id, created_at) WHERE state = 'HELD';

-- Signed provider requests (earnings, payouts) by nonce: a nonce is used once, so a replay never pays twice.
CREATE TABLE provider_requests (
    nonce           TEXT PRIMARY KEY,
    provider_id     TEXT NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    amount_sat      BIGINT NULL,
    signed_at       BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    result          TEXT NULL
);

-- Tokens of other accepted mints being redeemed. The blinded outputs are stored BEFORE the swap at that mint, so
-- if the node dies mid-swap, NUT-09 restore recovers the fresh ecash and the payment is credited once.
CREATE TABLE foreign_payments (
    token_key       TEXT PRIMARY KEY,
    mint            TEXT NOT NULL,
    token           TEXT NOT NULL,
    amount_sat      BIGINT NOT NULL,
    outputs         TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING', 'CREDITED', 'FAILED')),
    credited_msat   BIGINT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX foreign_payments_pending ON foreign_payments (node_id, updated_at) WHERE state = 'PENDING';

-- The market's own ecash of other mints (what foreign payments were swapped into).
CREATE TABLE foreign_proofs (
    secret          TEXT PRIMARY KEY,
    mint            TEXT NOT NULL,
    keyset_id       TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    c               TEXT NOT NULL,
    token_key       TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
