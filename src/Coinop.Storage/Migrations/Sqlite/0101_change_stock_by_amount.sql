-- Taking a proof of change out of stock (in a token-paid request's settle) deleted from three b-trees: the table, its
-- secret key and the amount index; restocking inserted into all three. Kept in (amount, secret) order without a rowid,
-- the stock is one b-tree: the settle takes the first proof of an amount, restocking adds to it. A proof is still handed
-- out once (the delete is keyed); its secret stays unique with its amount, and a proof is recorded as issued under its
-- unique blinded message in the transaction that stocks it.
CREATE TABLE change_stock_by_amount (
    amount          INTEGER NOT NULL CHECK (amount > 0),
    secret          TEXT NOT NULL,
    keyset_id       TEXT NOT NULL,
    c               TEXT NOT NULL,
    dleq            TEXT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (amount, secret)
) WITHOUT ROWID;
INSERT INTO change_stock_by_amount (amount, secret, keyset_id, c, dleq, created_at)
    SELECT amount, secret, keyset_id, c, dleq, created_at FROM change_stock;
DROP TABLE change_stock;
ALTER TABLE change_stock_by_amount RENAME TO change_stock;
