-- SQLite keeps the change stock in one b-tree by (amount, secret) from this migration on (see its 0101). PostgreSQL's
-- table stays: its rows live in the heap whatever the indexes, and SKIP LOCKED takers need the secret key.
SELECT 1;
