-- daily_state syncs to the app (read-only there) like the other synced tables, so it needs the
-- same bookkeeping column the pull reads to decide created vs updated (0002_sync.sql).
ALTER TABLE daily_state ADD COLUMN created_by_device TEXT;
