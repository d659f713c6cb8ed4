-- Sessions of deleted accounts: the SHA-256 of each refresh token that was live when its account was
-- deleted, so a device presenting it can be told to wipe its local copy (user.checkDeletion) instead of
-- only "sign in again". No personal data: the hashes are of random tokens, and no user id is kept.
-- Rows expire with the tokens they stand for (or after tombstone_retention_days, whichever is later).

CREATE TABLE deleted_sessions (
    token_hash      TEXT PRIMARY KEY,
    deleted_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX deleted_sessions_expires ON deleted_sessions (expires_at);
