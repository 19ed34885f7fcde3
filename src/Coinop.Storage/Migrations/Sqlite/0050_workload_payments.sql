-- Paid workloads. A workload's money sits in its own ledger account, 'workload:<id>' (kind 'hold'): each payment
-- moves in from its request hold in the transaction that grants the lease it buys; consumed time moves out to 'spent'
-- (the providers' earnings and the fee) as time passes; what is left is refunded once, when the workload ends.
-- settled_until only moves forward, by a conditional update in the transaction that moves the money, so no span of
-- time is charged twice and a market that died mid-way continues from there.
CREATE TABLE workload_accounts (
    workload_id     TEXT PRIMARY KEY REFERENCES workloads (id),
    payer_account   TEXT NOT NULL,
    settled_until   INTEGER NOT NULL,
    charged_msat    INTEGER NOT NULL DEFAULT 0 CHECK (charged_msat >= 0),
    state           TEXT NOT NULL CHECK (state IN ('OPEN', 'CLOSED')),
    refund_msat     INTEGER NULL CHECK (refund_msat >= 0),
    refund_token    TEXT NULL,
    created_at      INTEGER NOT NULL,
    closed_at       INTEGER NULL,
    CHECK ((state = 'CLOSED') = (refund_msat IS NOT NULL))
);
CREATE INDEX workload_accounts_open ON workload_accounts (workload_id) WHERE state = 'OPEN';

-- What each provider serving a workload (its copy or a standby) is paid, msat per second as exact decimal text,
-- fixed when the provider was placed: its advertised rate then, for the workload's cores and memory.
CREATE TABLE workload_rates (
    workload_id       TEXT NOT NULL REFERENCES workloads (id),
    provider_id       TEXT NOT NULL,
    msat_per_second   TEXT NOT NULL,
    PRIMARY KEY (workload_id, provider_id)
);

-- Change that may not have reached its consumer (a stream left early): collected once into the paying token's
-- balance when that token is used as the Bearer key on /v1/balance/*.
ALTER TABLE payment_holds ADD COLUMN change_collected_at INTEGER NULL;
CREATE INDEX payment_holds_change ON payment_holds (release_to) WHERE change_token IS NOT NULL AND change_collected_at IS NULL;

-- Refunds live with the workload's account now.
ALTER TABLE workloads DROP COLUMN refund_msat;
ALTER TABLE workloads DROP COLUMN refund_token;
