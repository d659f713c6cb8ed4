"""Devices: where a user's notifications go (a push token, an ntfy topic, a webhook URL).

An address belongs to one user at a time: a phone that signs in as someone else hands its push
token to the new user, and the old owner's pending messages for it are dropped with the old row,
so nobody ever receives another user's notifications. One app install (device_id) keeps one
address per provider: a rotated push token replaces the old one instead of doubling every push.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer import clock
from trainer.db import Queries, Row, Transaction
from trainer.ids import new_id

MAX_DEVICES_PER_USER = 20

_COLUMNS = (
    "id, user_id, provider, token, secret_sealed, device_id, platform, app_version, active, inactive_reason, "
    "created_at, updated_at, last_sent_at"
)


@dataclass(frozen=True)
class Device:
    id: str
    user_id: str
    provider: str
    token: str
    secret_sealed: str | None
    device_id: str | None
    platform: str
    app_version: str | None
    active: bool
    inactive_reason: str | None
    created_at: int
    updated_at: int
    last_sent_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> Device:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


async def register(
    tx: Transaction,
    user_id: str,
    *,
    provider: str,
    token: str,
    device_id: str | None,
    platform: str,
    app_version: str | None,
    secret_sealed: str | None = None,
    max_per_user: int = MAX_DEVICES_PER_USER,
) -> Device:
    """Add or refresh the caller's address; it is taken from any other user who had it.

    Registering again without a secret keeps the one stored (the app re-registers on every start).
    """
    now = clock.now_ms()
    # Another user's row for this address goes, with its pending deliveries (ON DELETE CASCADE).
    await tx.execute(
        "DELETE FROM devices WHERE provider = $1 AND token = $2 AND user_id <> $3", provider, token, user_id
    )
    if device_id is not None:
        await tx.execute(
            "DELETE FROM devices WHERE user_id = $1 AND provider = $2 AND device_id = $3 AND token <> $4",
            user_id,
            provider,
            device_id,
            token,
        )
    row = await tx.fetchrow(
        f"""INSERT INTO devices (id, user_id, provider, token, secret_sealed, device_id, platform, app_version,
                                 active, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $9)
            ON CONFLICT (provider, token) DO UPDATE SET
                user_id = excluded.user_id, secret_sealed = COALESCE(excluded.secret_sealed, devices.secret_sealed),
                device_id = COALESCE(excluded.device_id, devices.device_id), platform = excluded.platform,
                app_version = excluded.app_version, active = TRUE, inactive_reason = NULL,
                updated_at = excluded.updated_at
            RETURNING {_COLUMNS}""",
        new_id(),
        user_id,
        provider,
        token,
        secret_sealed,
        device_id,
        platform,
        app_version,
        now,
    )
    assert row is not None
    await _evict_oldest(tx, user_id, max_per_user)
    return Device.from_row(row)


async def _evict_oldest(tx: Transaction, user_id: str, keep: int) -> None:
    """A user reinstalling the app many times must not make every push fan out to dead tokens."""
    await tx.execute(
        """DELETE FROM devices WHERE user_id = $1 AND id NOT IN (
               SELECT id FROM devices WHERE user_id = $1 ORDER BY updated_at DESC, id LIMIT $2)""",
        user_id,
        keep,
    )


async def list_for_user(db: Queries, user_id: str) -> list[Device]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_at, id", user_id)
    return [Device.from_row(r) for r in rows]


async def active_for_user(db: Queries, user_id: str) -> list[Device]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM devices WHERE user_id = $1 AND active ORDER BY created_at, id", user_id
    )
    return [Device.from_row(r) for r in rows]


async def get_many(db: Queries, user_id: str, ids: list[str]) -> dict[str, Device]:
    """The user's devices among `ids` (rows moved to another user are not returned)."""
    if not ids:
        return {}
    marks = ", ".join(f"${i + 2}" for i in range(len(ids)))
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM devices WHERE user_id = $1 AND id IN ({marks})", user_id, *ids)
    return {r["id"]: Device.from_row(r) for r in rows}


async def unregister(
    tx: Queries,
    user_id: str,
    *,
    id: str | None = None,
    provider: str | None = None,
    token: str | None = None,
    device_id: str | None = None,
) -> int:
    """Remove the caller's addresses that match every given filter; returns how many went."""
    clauses, args = ["user_id = $1"], [user_id]
    for column, value in (("id", id), ("provider", provider), ("token", token), ("device_id", device_id)):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if len(args) == 1:
        raise ValueError("unregister needs at least one filter besides the user")
    return await tx.execute(f"DELETE FROM devices WHERE {' AND '.join(clauses)}", *args)


async def deactivate(db: Queries, target_id: str, reason: str, *, sent_at: int) -> None:
    """The provider says this address is gone; keep the row (the app sees why) but stop sending.

    An address the app registered again after the message went out (`sent_at`) stays active: the
    app has just told us it is valid.
    """
    await db.execute(
        """UPDATE devices SET active = FALSE, inactive_reason = $2, updated_at = $4
           WHERE id = $1 AND active AND updated_at <= $3""",
        target_id,
        reason[:200],
        sent_at,
        max(clock.now_ms(), sent_at + 1),
    )


async def mark_sent(db: Queries, target_ids: list[str], at: int) -> None:
    await db.executemany("UPDATE devices SET last_sent_at = $2 WHERE id = $1", [(t, at) for t in target_ids])
