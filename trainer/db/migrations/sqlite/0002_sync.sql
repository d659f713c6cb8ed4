-- Sync bookkeeping: how far a user's tombstones have been purged.
-- A device whose lastPulledAt is below users.sync_purged_stamp may have missed deletions whose
-- tombstones are gone, so its next pull is a full snapshot with resetRequired = true.

ALTER TABLE users ADD COLUMN sync_purged_stamp BIGINT NOT NULL DEFAULT 0;

-- The device that created a row already holds it: its pulls get the row as `updated`, never as
-- `created` (WatermelonDB logs a created-but-exists record as an error, issue #649).
ALTER TABLE activities ADD COLUMN created_by_device TEXT;
ALTER TABLE daily_metrics ADD COLUMN created_by_device TEXT;
ALTER TABLE training_plans ADD COLUMN created_by_device TEXT;
ALTER TABLE scheduled_workouts ADD COLUMN created_by_device TEXT;

-- The periodic purge scans tombstones by age across all users.
CREATE INDEX sync_tombstones_stamp ON sync_tombstones (deleted_stamp);
