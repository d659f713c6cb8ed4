-- Notifications: where to push (devices), what to say (notifications, the outbox) and what happened to each
-- message at each place (deliveries). A notification row commits in the same transaction as the event that
-- causes it; the delivery runner claims due rows with a lease, so two runners never send the same message twice.

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider        TEXT NOT NULL,          -- notifier plugin: expo, ntfy, webhook ...
    token           TEXT NOT NULL,          -- push token, topic or URL; belongs to one user at a time
    secret_sealed   TEXT,                   -- optional per-target secret (e.g. webhook signing key), encrypted
    device_id       TEXT,                   -- the app install (auth deviceId); one token per install and provider
    platform        TEXT NOT NULL DEFAULT 'other',
    app_version     TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    inactive_reason TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_sent_at    BIGINT
);
CREATE UNIQUE INDEX devices_provider_token ON devices (provider, token);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    category        TEXT NOT NULL,
    template_key    TEXT NOT NULL,
    params          JSONB NOT NULL DEFAULT '{}',
    dedupe_key      TEXT NOT NULL,          -- the causing event's identity: a replay enqueues nothing
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed | dropped | skipped | expired
    reason          TEXT,
    runs            INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    not_before      BIGINT NOT NULL,        -- due from (quiet-hours deferral and retry backoff move it)
    expires_at      BIGINT NOT NULL,        -- not worth sending after this
    claimed_until   BIGINT NOT NULL DEFAULT 0,
    claim_token     TEXT,
    finished_at     BIGINT
);
CREATE UNIQUE INDEX notifications_user_dedupe ON notifications (user_id, dedupe_key);
CREATE INDEX notifications_due ON notifications (status, not_before);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    target_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | sending | sent | retry | invalid_target | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    claim_token     TEXT,
    detail          TEXT,
    ticket          TEXT,                   -- provider's receipt handle (Expo ticket id), checked later
    receipt_due_at  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    UNIQUE (notification_id, target_id)     -- one delivery per message and place, however often runners retry
);
CREATE INDEX deliveries_target ON deliveries (target_id);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_receipts ON deliveries (receipt_due_at) WHERE ticket IS NOT NULL;
