-- Sync bookkeeping: how far a user's tombstones have been purged.
-- A device whose lastPulledAt is below users.sync_purged_stamp may have missed deletions whose
-- tombstones are gone, so its next pull is a full snapshot with resetRequired = true.

ALTER TABLE users ADD COLUMN sync_purged_stamp BIGINT NOT NULL DEFAULT 0;

-- The periodic purge scans tombstones by age across all users.
CREATE INDEX sync_tombstones_stamp ON sync_tombstones (deleted_stamp);
