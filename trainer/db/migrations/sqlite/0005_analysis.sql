-- Derived per-day training state (PMC, ACWR, monotony, readiness), written only by the recompute
-- engine and synced read-only to the app; one row per user and local calendar day.
-- Floats are stored at full precision: the next incremental recompute resumes from them exactly.

CREATE TABLE daily_state (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day             TEXT NOT NULL,
    load            REAL NOT NULL,
    ctl             REAL NOT NULL,
    atl             REAL NOT NULL,
    tsb             REAL NOT NULL,
    ramp            REAL NOT NULL,
    acwr            REAL,
    acwr_acute      REAL NOT NULL,
    acwr_chronic    REAL NOT NULL,
    monotony        REAL,
    strain          REAL,
    readiness_score REAL NOT NULL,
    readiness_band  TEXT NOT NULL,
    readiness_confidence TEXT NOT NULL,
    readiness_reasons JSON NOT NULL DEFAULT '[]',
    created_stamp   BIGINT NOT NULL,
    updated_stamp   BIGINT NOT NULL,
    changed_by_device TEXT
);
CREATE UNIQUE INDEX daily_state_user_day ON daily_state (user_id, day);
CREATE INDEX daily_state_user_stamp ON daily_state (user_id, updated_stamp);

-- The session as the plan (or a reschedule) intends it, before any readiness/load adaptation, as
-- JSON text (server-only, never synced): adaptation is always re-evaluated from it, so a later,
-- better reading can restore the planned session.
ALTER TABLE scheduled_workouts ADD COLUMN planned TEXT;
