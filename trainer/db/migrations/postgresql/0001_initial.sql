-- Users, credentials, refresh-token families, throttling, and the four synced tables.
-- Instants are BIGINT milliseconds since the epoch (the unit of sync timestamps); calendar days are DATE.
-- Synced tables carry created_stamp/updated_stamp (per-user change stamps taken in commit order) and
-- changed_by_device (so a device is not sent its own changes back); deletions leave a row in sync_tombstones.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    is_admin        BOOLEAN NOT NULL DEFAULT FALSE,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    settings        JSONB NOT NULL DEFAULT '{}',
    sync_stamp      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

CREATE TABLE refresh_families (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT,
    user_agent      TEXT,
    device_id       TEXT
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE invites (
    code_hash       TEXT PRIMARY KEY,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    created_by      TEXT,
    note            TEXT,
    used_at         BIGINT,
    used_by         TEXT REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE login_throttle (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    window_start    BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE activities (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source          TEXT NOT NULL DEFAULT 'app',
    external_id     TEXT,
    sport           TEXT NOT NULL DEFAULT 'other',
    name            TEXT NOT NULL DEFAULT '',
    notes           TEXT NOT NULL DEFAULT '',
    start_time      BIGINT NOT NULL,
    utc_offset_s    INTEGER NOT NULL DEFAULT 0,
    duration_s      DOUBLE PRECISION NOT NULL DEFAULT 0,
    moving_time_s   DOUBLE PRECISION,
    distance_m      DOUBLE PRECISION,
    elevation_gain_m DOUBLE PRECISION,
    calories_kcal   DOUBLE PRECISION,
    avg_hr          DOUBLE PRECISION,
    max_hr          DOUBLE PRECISION,
    avg_power_w     DOUBLE PRECISION,
    max_power_w     DOUBLE PRECISION,
    normalized_power_w DOUBLE PRECISION,
    avg_cadence     DOUBLE PRECISION,
    avg_speed_m_s   DOUBLE PRECISION,
    device          TEXT,
    manual          BOOLEAN NOT NULL DEFAULT FALSE,
    rpe             DOUBLE PRECISION,
    trimp           DOUBLE PRECISION,
    hr_tss          DOUBLE PRECISION,
    training_load   DOUBLE PRECISION,
    analysis        JSONB,
    created_stamp   BIGINT NOT NULL,
    updated_stamp   BIGINT NOT NULL,
    changed_by_device TEXT
);
CREATE INDEX activities_user_stamp ON activities (user_id, updated_stamp);
CREATE INDEX activities_user_start ON activities (user_id, start_time);
CREATE UNIQUE INDEX activities_user_source_external ON activities (user_id, source, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE activity_streams (
    activity_id     TEXT PRIMARY KEY REFERENCES activities (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    codec_version   INTEGER NOT NULL,
    sample_count    INTEGER NOT NULL,
    data            BYTEA NOT NULL
);

CREATE TABLE daily_metrics (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day             DATE NOT NULL,
    resting_hr      DOUBLE PRECISION,
    hrv_rmssd_ms    DOUBLE PRECISION,
    sleep_s         DOUBLE PRECISION,
    sleep_score     DOUBLE PRECISION,
    stress          DOUBLE PRECISION,
    soreness        INTEGER,
    fatigue         INTEGER,
    mood            INTEGER,
    notes           TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL DEFAULT 'app',
    created_stamp   BIGINT NOT NULL,
    updated_stamp   BIGINT NOT NULL,
    changed_by_device TEXT
);
CREATE INDEX daily_metrics_user_stamp ON daily_metrics (user_id, updated_stamp);
CREATE INDEX daily_metrics_user_day ON daily_metrics (user_id, day);

CREATE TABLE training_plans (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL DEFAULT '',
    sport           TEXT NOT NULL DEFAULT 'run',
    goal            TEXT NOT NULL DEFAULT '',
    start_date      DATE,
    race_date       DATE,
    status          TEXT NOT NULL DEFAULT 'active',
    current_phase   TEXT,
    options         JSONB NOT NULL DEFAULT '{}',
    created_stamp   BIGINT NOT NULL,
    updated_stamp   BIGINT NOT NULL,
    changed_by_device TEXT
);
CREATE INDEX training_plans_user_stamp ON training_plans (user_id, updated_stamp);

CREATE TABLE scheduled_workouts (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan_id         TEXT REFERENCES training_plans (id) ON DELETE CASCADE,
    day             DATE NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'easy',
    title           TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    target_duration_min DOUBLE PRECISION,
    target_load     DOUBLE PRECISION,
    status          TEXT NOT NULL DEFAULT 'planned',
    completed_activity_id TEXT REFERENCES activities (id) ON DELETE SET NULL,
    original_kind   TEXT,
    adaptation_reason TEXT,
    created_stamp   BIGINT NOT NULL,
    updated_stamp   BIGINT NOT NULL,
    changed_by_device TEXT
);
CREATE INDEX scheduled_workouts_user_stamp ON scheduled_workouts (user_id, updated_stamp);
CREATE INDEX scheduled_workouts_plan ON scheduled_workouts (plan_id);
CREATE INDEX scheduled_workouts_user_day ON scheduled_workouts (user_id, day);

CREATE TABLE sync_tombstones (
    table_name      TEXT NOT NULL,
    row_id          TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    deleted_stamp   BIGINT NOT NULL,
    changed_by_device TEXT,
    PRIMARY KEY (table_name, row_id)
);
CREATE INDEX sync_tombstones_user_stamp ON sync_tombstones (user_id, deleted_stamp);
