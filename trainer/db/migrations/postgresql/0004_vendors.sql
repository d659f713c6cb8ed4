-- Vendor integrations: account links (tokens encrypted at rest), OAuth connect sessions, rate-limit
-- windows shared by every process, resumable backfills, every (source, external id) of an activity
-- (one workout recorded by several sources is stored once), and what each vendor said about a day.
-- Instants are BIGINT milliseconds since the epoch.

-- One row per connected vendor account. `tokens` is AES-GCM ciphertext of the whole TokenSet, bound to
-- (plugin, user_id); `refresh_lease_until` is set while one process refreshes the tokens, because a
-- refresh kills the old refresh token and two concurrent refreshes would disconnect the user.
CREATE TABLE vendor_accounts (
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plugin              TEXT NOT NULL,
    external_user_id    TEXT NOT NULL,
    tokens              TEXT NOT NULL,
    scope               TEXT NOT NULL DEFAULT '',
    expires_at          BIGINT,
    refresh_lease_until BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (user_id, plugin)
);
-- A vendor account belongs to one trainer user; webhooks find the user through this index.
CREATE UNIQUE INDEX vendor_accounts_external ON vendor_accounts (plugin, external_user_id);

-- Single-use steps of the browser connect flow, keyed by the SHA-256 of the secret they stand for:
-- stage 'start' = the short-lived connect token the app opens /connect/<plugin>?token= with;
-- stage 'state' = the OAuth state sent to the vendor (with the encrypted PKCE verifier and the hash of
-- the cookie that binds the flow to the browser that started it).
CREATE TABLE connect_sessions (
    key_hash        TEXT PRIMARY KEY,
    stage           TEXT NOT NULL CHECK (stage IN ('start', 'state')),
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plugin          TEXT NOT NULL,
    family_id       TEXT NOT NULL,
    verifier        TEXT,
    browser_hash    TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX connect_sessions_expires ON connect_sessions (expires_at);

-- A vendor's request quota per window (Strava: 15 minutes and a day), as its response headers last
-- said plus what was sent since; every server and worker counts against the same rows.
CREATE TABLE plugin_rate_windows (
    plugin          TEXT NOT NULL,
    name            TEXT NOT NULL,
    limit_count     INTEGER,
    usage           INTEGER NOT NULL DEFAULT 0,
    resets_at       BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (plugin, name)
);

-- `trainer backfill` progress: the plugin's opaque checkpoint after the last page recorded.
CREATE TABLE backfill_runs (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plugin          TEXT NOT NULL,
    since           BIGINT NOT NULL,
    checkpoint      TEXT,
    pages           INTEGER NOT NULL DEFAULT 0,
    events          INTEGER NOT NULL DEFAULT 0,
    done            BOOLEAN NOT NULL DEFAULT FALSE,
    started_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, plugin, since)
);

-- Every source that delivered an activity, including the one whose data the activities row holds
-- (activities.source/external_id); `richness` decides which source's data is kept.
CREATE TABLE activity_sources (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source          TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    activity_id     TEXT NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    richness        INTEGER NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, source, external_id)
);
CREATE INDEX activity_sources_activity ON activity_sources (activity_id);

-- What vendors reported for one day (`summaries`: source -> merged DailySummary) and the values the
-- vendor merge last wrote into daily_metrics (`written`: column -> value), so a value the user changed
-- since is recognised as theirs and never overwritten.
CREATE TABLE daily_vendor_values (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day             DATE NOT NULL,
    summaries       JSONB NOT NULL DEFAULT '{}',
    written         JSONB NOT NULL DEFAULT '{}',
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);
