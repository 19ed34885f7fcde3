-- What a consumer requires of the provider's isolation: 'sandbox' (bubblewrap or docker) or 'none' (any provider).
-- Placement and respawns skip providers below it; workloads stored before this column required a sandbox.
ALTER TABLE workloads ADD COLUMN isolation TEXT NOT NULL DEFAULT 'sandbox' CHECK (isolation IN ('sandbox', 'none'));
