-- The webhook inbox: one row per vendor event, the durable record that the task queue only points at.
-- A webhook is acknowledged once its rows commit; workers claim a row (pending -> processing) with one
-- conditional UPDATE, so two workers never process it at once, and the sweeper re-rings rows whose
-- doorbell was lost or whose worker died (processing longer than the lease).
--   state: pending (waiting, maybe until next_attempt_at), processing (claimed at locked_at by locked_by),
--          done, failed (dead letter: last_error says why; `trainer inbox retry` revives it), ignored.
-- Instants are BIGINT milliseconds; event_time is the vendor's statement of when it happened.

CREATE TABLE inbox (
    id              TEXT PRIMARY KEY,
    plugin          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    external_user_id TEXT NOT NULL,
    object_id       TEXT NOT NULL DEFAULT '',
    event_time      BIGINT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    payload         JSON NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'processing', 'done', 'failed', 'ignored')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    result          JSON,
    received_at     BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    rung_at         BIGINT,
    locked_at       BIGINT,
    locked_by       TEXT,
    finished_at     BIGINT
);
-- A replayed webhook maps to the same key and is dropped by ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX inbox_dedupe ON inbox (plugin, kind, user_id, dedupe_key);
CREATE INDEX inbox_state_due ON inbox (state, next_attempt_at);
-- One account at a time, oldest first (see trainer/ingest/inbox.py claim); also `trainer inbox list --user`.
CREATE INDEX inbox_account ON inbox (user_id, plugin, state, received_at);
