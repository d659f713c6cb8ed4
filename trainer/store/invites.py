"""Invite codes for `registration = "invite"`: stored hashed, single use, expiring."""

from __future__ import annotations

from trainer import clock
from trainer.db import Queries


async def create(db: Queries, code_hash: str, *, ttl_ms: int, created_by: str | None, note: str | None) -> int:
    now = clock.now_ms()
    await db.execute(
        "INSERT INTO invites (code_hash, created_at, expires_at, created_by, note) VALUES ($1, $2, $3, $4, $5)",
        code_hash,
        now,
        now + ttl_ms,
        created_by,
        note,
    )
    return now + ttl_ms


async def redeem(db: Queries, code_hash: str, user_id: str) -> bool:
    """Spend a code for `user_id`; False if unknown, used or expired."""
    now = clock.now_ms()
    return (
        await db.execute(
            """UPDATE invites SET used_at = $2, used_by = $3
               WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2""",
            code_hash,
            now,
            user_id,
        )
        == 1
    )


async def is_valid(db: Queries, code_hash: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT 1 FROM invites WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
            code_hash,
            clock.now_ms(),
        )
    )
