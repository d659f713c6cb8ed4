"""The notification outbox: messages written with the event that causes them, delivered later.

`enqueue` runs inside the caller's transaction, so a notification exists exactly when its cause
committed (no "activity saved but push lost", no push about a rolled-back activity). The dedupe key
names the cause: enqueueing the same cause again — a pipeline task that ran twice — adds nothing.

Runners claim due rows with a lease (`claimed_until`) in one conditional UPDATE; a second runner
sees the lease and skips the row, and a runner that died leaves a lease that simply runs out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from trainer import clock
from trainer.db import Queries, Row
from trainer.ids import new_id
from trainer.notify import templates
from trainer.notify.templates import TemplateError

Final = Literal["sent", "failed", "dropped", "skipped", "expired"]
MAX_DEDUPE_KEY = 200


@dataclass(frozen=True)
class Claimed:
    """A due notification this runner holds the lease of."""

    id: str
    user_id: str
    category: str
    template_key: str
    params: dict[str, Any]
    created_at: int
    expires_at: int

    @classmethod
    def from_row(cls, row: Row) -> Claimed:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


async def enqueue(
    tx: Queries,
    user_id: str,
    category: str,
    template_key: str,
    params: Mapping[str, Any],
    dedupe_key: str | None = None,
    *,
    not_before: int | None = None,
) -> str | None:
    """Write a notification in the caller's transaction; returns its id, or None for a duplicate cause.

    `params` are plain JSON values the template renders (numbers in SI units, ids); `dedupe_key`
    identifies the cause (e.g. "activity_analyzed:<activity id>") and is unique per user.
    """
    template = templates.get(template_key)
    if template.category != category:
        raise TemplateError(f"template {template_key!r} belongs to category {template.category!r}, not {category!r}")
    if dedupe_key is not None and not 0 < len(dedupe_key) <= MAX_DEDUPE_KEY:
        raise ValueError(f"dedupe_key must be 1-{MAX_DEDUPE_KEY} characters")
    now = clock.now_ms()
    notification_id = new_id()
    row = await tx.fetchrow(
        """INSERT INTO notifications (id, user_id, category, template_key, params, dedupe_key,
                                      created_at, not_before, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (user_id, dedupe_key) DO NOTHING
           RETURNING id""",
        notification_id,
        user_id,
        category,
        template_key,
        dict(params),
        dedupe_key or notification_id,
        now,
        max(now, not_before or now),
        now + template.ttl_s * 1000,
    )
    return None if row is None else str(row["id"])


async def claim_due(db: Queries, *, now: int, lease_ms: int, token: str, limit: int) -> list[Claimed]:
    """Take the lease of up to `limit` due notifications; rows another runner holds are skipped.

    The lease test is repeated in the outer WHERE: on PostgreSQL a runner that waited for a row
    lock re-checks it against the row as the other runner committed it, and finds it taken.
    """
    rows = await db.fetch(
        """UPDATE notifications SET claimed_until = $2, claim_token = $3, runs = runs + 1
           WHERE id IN (SELECT id FROM notifications
                        WHERE status = 'pending' AND not_before <= $1 AND claimed_until <= $1
                        ORDER BY not_before, id LIMIT $4)
             AND status = 'pending' AND not_before <= $1 AND claimed_until <= $1
           RETURNING id, user_id, category, template_key, params, created_at, expires_at""",
        now,
        now + lease_ms,
        token,
        limit,
    )
    return sorted((Claimed.from_row(r) for r in rows), key=lambda c: (c.created_at, c.id))


async def finish(db: Queries, notification_id: str, token: str, status: Final, reason: str, now: int) -> bool:
    """Settle a claimed notification for good; False when the lease was lost to another runner."""
    changed = await db.execute(
        """UPDATE notifications SET status = $3, reason = $4, finished_at = $5, claimed_until = 0, claim_token = NULL
           WHERE id = $1 AND claim_token = $2""",
        notification_id,
        token,
        status,
        reason[:200] or None,
        now,
    )
    return changed == 1


async def release(db: Queries, notification_id: str, token: str, not_before: int, reason: str = "") -> bool:
    """Hand a claimed notification back, due again at `not_before` (a retry, or the end of quiet hours)."""
    changed = await db.execute(
        """UPDATE notifications SET not_before = $3, reason = $4, claimed_until = 0, claim_token = NULL
           WHERE id = $1 AND claim_token = $2""",
        notification_id,
        token,
        not_before,
        reason[:200] or None,
    )
    return changed == 1


async def next_due(db: Queries) -> int | None:
    """When the earliest pending notification is due (ms), for scheduling the next run."""
    value = await db.fetchval(
        "SELECT MIN(CASE WHEN claimed_until > not_before THEN claimed_until ELSE not_before END) "
        "FROM notifications WHERE status = 'pending'"
    )
    return None if value is None else int(value)


async def list_for_user(db: Queries, user_id: str, *, limit: int = 50) -> list[Row]:
    """The user's latest notifications with their state (newest first), for support and the app."""
    return await db.fetch(
        """SELECT id, category, template_key, params, status, reason, created_at, not_before, finished_at
           FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2""",
        user_id,
        limit,
    )
