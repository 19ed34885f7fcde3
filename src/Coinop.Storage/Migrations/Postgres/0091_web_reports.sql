-- The operator's page and the balance-key page read the journal by time and by account; without these indexes each of
-- their reads would scan the whole journal. (to_account, id) also finds payouts.
CREATE INDEX ledger_entries_at ON ledger_entries (at);
CREATE INDEX ledger_entries_from ON ledger_entries (from_account, id);
CREATE INDEX ledger_entries_to ON ledger_entries (to_account, id);

-- Providers the operator revoked: their handshakes are refused from then on (a separate table, so a revocation never
-- races the registry's own updates of a provider's row).
CREATE TABLE provider_revocations (
    provider_id     TEXT PRIMARY KEY,
    revoked_at      BIGINT NOT NULL,
    reason          TEXT NOT NULL
);
