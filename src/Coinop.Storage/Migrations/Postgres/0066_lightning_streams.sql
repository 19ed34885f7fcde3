-- The invoice-stream position is named for what it is (an index the node gave); the table had no rows yet.
DROP TABLE lightning_cursors;
CREATE TABLE lightning_cursors (
    backend     TEXT PRIMARY KEY,
    resume_from TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- NUT-20: a mint quote made with a public key is minted only with a signature by its secret key.
ALTER TABLE mint_quotes ADD COLUMN pubkey TEXT NULL;
