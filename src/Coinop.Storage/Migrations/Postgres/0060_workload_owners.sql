-- Workloads belong to their submitter: the SHA-256 (hex) of the owner key sent (or made) at submit. Only requests
-- with that key may read, follow, access, cancel or top up the workload, and a key lists only its own workloads.
-- Written in the transaction that inserts the workload. A workload without a row here predates owner keys.
CREATE TABLE workload_owners (
    workload_id     TEXT PRIMARY KEY REFERENCES workloads (id),
    owner_hash      TEXT NOT NULL
);
CREATE INDEX workload_owners_owner ON workload_owners (owner_hash);
