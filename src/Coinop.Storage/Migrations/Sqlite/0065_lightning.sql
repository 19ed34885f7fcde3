-- One payment per invoice: at most one melt quote per payment hash may be PENDING or PAID. This is the
-- idempotency key of outgoing payments, held by the store, so it holds across market nodes too.
CREATE UNIQUE INDEX melt_quotes_one_payment_per_hash ON melt_quotes (payment_hash) WHERE state IN ('PENDING', 'PAID');

-- Invoices this mint issued, by payment hash: paid-invoice notifications and internal settlement look them up.
CREATE INDEX mint_quotes_by_payment_hash ON mint_quotes (payment_hash);

-- Where a Lightning backend's invoice stream resumes after a restart (LND add/settle index, CLN lastpay_index).
CREATE TABLE lightning_cursors (
    backend     TEXT PRIMARY KEY,
    cursor      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
