-- Every journal row went into four indexes besides the table, so each paid request's two commits wrote that many more
-- index pages. What reads the journal by key: the operator's money chart (by time: ledger_entries_at), the balance-key
-- page (a balance account's movements) and the payout list (entries into 'paid_out'). Nothing reads it by reference.
-- The indexes now hold only those rows.
DROP INDEX ledger_entries_reference;
DROP INDEX ledger_entries_from;
DROP INDEX ledger_entries_to;
CREATE INDEX ledger_entries_balance_from ON ledger_entries (from_account, id) WHERE substr(from_account, 1, 8) = 'balance:';
CREATE INDEX ledger_entries_balance_to ON ledger_entries (to_account, id) WHERE substr(to_account, 1, 8) = 'balance:';
CREATE INDEX ledger_entries_paid_out ON ledger_entries (id) WHERE to_account = 'paid_out';
