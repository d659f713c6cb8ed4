"""Delivery records: one row per (notification, device), the unit that is sent exactly once.

A runner may only send a row it moved to `sending` under its own claim token in one conditional
UPDATE, and may only record the outcome while it still holds that claim. Two runners that both
hold the same notification (the first one's lease ran out while it was stuck on a slow provider)
therefore still send each device the message once. A runner killed mid-send leaves `sending` with
a lease; when that runs out the row is sent again: at-least-once across crashes, which a webhook
receiver can dedupe on the stable `webhook-id`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from trainer.db import Queries, Row, Transaction
from trainer.ids import new_id

OPEN = ("pending", "retry", "sending")
Outcome = Literal["sent", "retry", "invalid_target", "failed"]


@dataclass(frozen=True)
class Attempt:
    """A delivery this runner has claimed and must now send."""

    id: str
    notification_id: str
    target_id: str
    attempts: int  # including this one


@dataclass(frozen=True)
class Result:
    """What to record for one attempt."""

    attempt: Attempt
    status: Outcome
    detail: str = ""
    next_attempt_at: int | None = None  # retry
    ticket: str | None = None  # sent, to be confirmed
    receipt_due_at: int | None = None


def _marks(values: Sequence[object], start: int = 1) -> str:
    return ", ".join(f"${i + start}" for i in range(len(values)))


async def expand(db: Queries, pairs: Iterable[tuple[str, str]], now: int) -> None:
    """Make sure a delivery row exists for each (notification id, target id); existing rows stay as they are."""
    await db.executemany(
        """INSERT INTO deliveries (id, notification_id, target_id, status, next_attempt_at, created_at, updated_at)
           VALUES ($1, $2, $3, 'pending', $4, $4, $4)
           ON CONFLICT (notification_id, target_id) DO NOTHING""",
        [(new_id(), n, t, now) for n, t in pairs],
    )


async def claim(db: Queries, notification_ids: Sequence[str], *, now: int, lease_ms: int, token: str) -> list[Attempt]:
    """Claim the due deliveries of these notifications, only towards devices their user still owns and uses."""
    if not notification_ids:
        return []
    rows = await db.fetch(
        f"""UPDATE deliveries SET status = 'sending', lease_until = $2, claim_token = $3,
                                  attempts = attempts + 1, updated_at = $1
            WHERE notification_id IN ({_marks(notification_ids, 4)})
              AND ((status IN ('pending', 'retry') AND next_attempt_at <= $1)
                   OR (status = 'sending' AND lease_until <= $1))
              AND EXISTS (SELECT 1 FROM devices d JOIN notifications n ON n.user_id = d.user_id
                          WHERE d.id = deliveries.target_id AND n.id = deliveries.notification_id AND d.active)
            RETURNING id, notification_id, target_id, attempts""",
        now,
        now + lease_ms,
        token,
        *notification_ids,
    )
    return [Attempt(r["id"], r["notification_id"], r["target_id"], r["attempts"]) for r in rows]


async def record(tx: Transaction, result: Result, token: str, now: int) -> bool:
    """Store an outcome; False (nothing written) if another runner has taken the row over meanwhile."""
    changed = await tx.execute(
        """UPDATE deliveries SET status = $3, detail = $4, next_attempt_at = COALESCE($5, next_attempt_at),
                                 ticket = $6, receipt_due_at = $7,
                                 sent_at = CASE WHEN $3 = 'sent' THEN $8 ELSE sent_at END,
                                 lease_until = 0, claim_token = NULL, updated_at = $8
           WHERE id = $1 AND claim_token = $2 AND status = 'sending'""",
        result.attempt.id,
        token,
        result.status,
        result.detail[:200] or None,
        result.next_attempt_at,
        result.ticket,
        result.receipt_due_at,
        now,
    )
    return changed == 1


async def fail_unreachable(db: Queries, notification_ids: Sequence[str], now: int) -> None:
    """Close open rows whose device was deactivated, removed from use or handed to another user."""
    if not notification_ids:
        return
    await db.execute(
        f"""UPDATE deliveries SET status = 'failed', detail = 'device no longer available', updated_at = $1
            WHERE notification_id IN ({_marks(notification_ids, 2)}) AND status IN ('pending', 'retry')
              AND NOT EXISTS (SELECT 1 FROM devices d JOIN notifications n ON n.user_id = d.user_id
                              WHERE d.id = deliveries.target_id AND n.id = deliveries.notification_id AND d.active)""",
        now,
        *notification_ids,
    )


async def abandon(db: Queries, notification_id: str, detail: str, now: int) -> None:
    """Give up on a notification's rows that are not sent yet (it expired)."""
    await db.execute(
        """UPDATE deliveries SET status = 'failed', detail = $2, updated_at = $3
           WHERE notification_id = $1 AND status IN ('pending', 'retry')""",
        notification_id,
        detail,
        now,
    )


async def states(db: Queries, notification_ids: Sequence[str]) -> dict[str, list[Row]]:
    """Every delivery row of these notifications, by notification."""
    found: dict[str, list[Row]] = {n: [] for n in notification_ids}
    if not notification_ids:
        return found
    rows = await db.fetch(
        f"""SELECT notification_id, status, detail, next_attempt_at, lease_until FROM deliveries
            WHERE notification_id IN ({_marks(notification_ids)})""",
        *notification_ids,
    )
    for row in rows:
        found[row["notification_id"]].append(row)
    return found


# -- receipts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A sent delivery whose ticket still has to be checked."""

    id: str
    target_id: str
    provider: str
    ticket: str
    sent_at: int


async def claim_receipts(db: Queries, *, now: int, recheck_at: int, limit: int) -> list[Pending]:
    """Take up to `limit` tickets that are due for a check; the next check moves to `recheck_at`."""
    rows = await db.fetch(
        """UPDATE deliveries SET receipt_due_at = $2
           WHERE id IN (SELECT id FROM deliveries WHERE ticket IS NOT NULL AND receipt_due_at <= $1
                        ORDER BY receipt_due_at, id LIMIT $3)
             AND ticket IS NOT NULL AND receipt_due_at <= $1
           RETURNING id, target_id, ticket, sent_at""",
        now,
        recheck_at,
        limit,
    )
    if not rows:
        return []
    targets = sorted({r["target_id"] for r in rows})
    providers = {
        r["id"]: r["provider"]
        for r in await db.fetch(f"SELECT id, provider FROM devices WHERE id IN ({_marks(targets)})", *targets)
    }
    return [
        Pending(r["id"], r["target_id"], providers.get(r["target_id"], ""), r["ticket"], r["sent_at"] or now)
        for r in rows
    ]


async def settle_receipt(db: Queries, delivery_id: str, *, status: Outcome | None, detail: str, now: int) -> None:
    """The ticket is answered (or given up on): stop checking it; `status` corrects the row when it failed."""
    await db.execute(
        """UPDATE deliveries SET ticket = NULL, receipt_due_at = NULL, status = COALESCE($2, status),
                                 detail = $3, updated_at = $4
           WHERE id = $1""",
        delivery_id,
        status,
        detail[:200] or None,
        now,
    )
