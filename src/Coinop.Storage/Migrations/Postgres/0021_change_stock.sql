-- Change the market keeps ready: ecash of its own mint, issued ahead of time in the usual denominations, so settling a
-- request hands proofs over (in the settle transaction) instead of signing new ones while the consumer waits. These
-- proofs are the market's own until handed out; they are not in the ledger, which counts consumers' money.
CREATE TABLE change_stock (
    secret          TEXT PRIMARY KEY,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    keyset_id       TEXT NOT NULL,
    c               TEXT NOT NULL,
    dleq            TEXT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX change_stock_amount ON change_stock (amount);
