-- Change in the payer's own mint. A token of another accepted mint is swapped there into notes from which any change
-- can be made (Coinop.Ecash.ChangeSplit); handing some of them back to a consumer marks them given (given_for: the
-- hold, refund or workload they paid back), in the transaction that moves the ledger. Ungiven ones are the market's
-- stock of that mint's ecash.
ALTER TABLE foreign_proofs ADD COLUMN given_for TEXT NULL;
ALTER TABLE foreign_proofs ADD COLUMN given_at BIGINT NULL;
CREATE INDEX foreign_proofs_stock ON foreign_proofs (mint, amount) WHERE given_for IS NULL;
CREATE INDEX foreign_proofs_token ON foreign_proofs (token_key) WHERE given_for IS NULL;

-- The mint a balance holds ecash of, for balances funded by another accepted mint (no row: the market's own mint).
-- Refunds are paid in that mint's ecash; a top-up in another mint's ecash is refused.
CREATE TABLE balance_mints (
    account         TEXT PRIMARY KEY,
    mint            TEXT NOT NULL
);
