-- The claim of an inbox row (trainer/ingest/inbox.py `claim`) as one statement: a look without the
-- lock, the account's advisory lock, and the conditional UPDATE, in one round trip instead of five
-- (SELECT, BEGIN, lock, UPDATE, COMMIT). Called in autocommit: the transaction-scoped lock is held
-- until the statement's own transaction commits, so the claim is visible before the next claimer of
-- the account gets the lock.
--
-- The lock comes before the UPDATE's snapshot: a VOLATILE plpgsql function takes a fresh snapshot
-- for each statement (READ COMMITTED), so the UPDATE sees every claim of the account committed
-- before the lock was granted, and two rows of one account cannot both be claimed. The lock key is
-- the one `Transaction.lock('inbox:<plugin>:<user_id>')` takes (trainer/db/postgres.py).
--
-- $1 row id, $2 due until (now + slack), $3 now, $4 the claim token. The WHERE clause is
-- trainer/ingest/inbox.py's _CLAIMABLE word for word (tests/ingest/test_claim.py checks it); a
-- change to it needs a new migration that replaces this function.
CREATE FUNCTION inbox_claim(TEXT, BIGINT, BIGINT, TEXT) RETURNS SETOF inbox
LANGUAGE plpgsql VOLATILE STRICT AS $claim$
DECLARE
    account RECORD;
    claimed inbox%ROWTYPE;
BEGIN
    SELECT user_id, plugin INTO account FROM inbox WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2
      AND NOT EXISTS (
          SELECT 1 FROM inbox AS other
          WHERE other.user_id = inbox.user_id AND other.plugin = inbox.plugin AND other.id <> inbox.id
            AND (other.state = 'processing'
                 OR (other.state = 'pending' AND other.next_attempt_at <= $3
                     AND (other.received_at < inbox.received_at
                          OR (other.received_at = inbox.received_at AND other.id < inbox.id)))));
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('inbox:' || account.plugin || ':' || account.user_id, 0));
    UPDATE inbox SET state = 'processing', attempts = attempts + 1, locked_at = $3, locked_by = $4
    WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2
      AND NOT EXISTS (
          SELECT 1 FROM inbox AS other
          WHERE other.user_id = inbox.user_id AND other.plugin = inbox.plugin AND other.id <> inbox.id
            AND (other.state = 'processing'
                 OR (other.state = 'pending' AND other.next_attempt_at <= $3
                     AND (other.received_at < inbox.received_at
                          OR (other.received_at = inbox.received_at AND other.id < inbox.id)))))
    RETURNING * INTO claimed;
    IF FOUND THEN
        RETURN NEXT claimed;
    END IF;
END
$claim$;
