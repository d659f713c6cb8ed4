"""Refresh-token families: one per login; each refresh spends a token and adds the next one.

A spent token presented again means it was copied: the whole family is revoked (reuse detection).
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer import clock
from trainer.db import Queries
from trainer.ids import new_id


@dataclass(frozen=True)
class Family:
    id: str
    user_id: str
    expires_at: int
    revoked_at: int | None
    device_id: str | None


@dataclass(frozen=True)
class TokenRow:
    token_hash: str
    family_id: str
    used_at: int | None


async def create_family(
    db: Queries, user_id: str, *, ttl_ms: int, user_agent: str | None, device_id: str | None
) -> Family:
    now = clock.now_ms()
    family = Family(new_id(), user_id, now + ttl_ms, None, device_id)
    await db.execute(
        """INSERT INTO refresh_families (id, user_id, created_at, last_used_at, expires_at, user_agent, device_id)
           VALUES ($1, $2, $3, $3, $4, $5, $6)""",
        family.id,
        user_id,
        now,
        family.expires_at,
        (user_agent or "")[:200],
        device_id,
    )
    return family


async def add_token(db: Queries, family_id: str, token_hash: str) -> None:
    await db.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at) VALUES ($1, $2, $3)",
        token_hash,
        family_id,
        clock.now_ms(),
    )


async def find_token(db: Queries, token_hash: str) -> tuple[TokenRow, Family] | None:
    row = await db.fetchrow(
        """SELECT t.token_hash, t.family_id, t.used_at, f.user_id, f.expires_at, f.revoked_at, f.device_id
           FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
           WHERE t.token_hash = $1""",
        token_hash,
    )
    if row is None:
        return None
    token = TokenRow(row["token_hash"], row["family_id"], row["used_at"])
    family = Family(row["family_id"], row["user_id"], row["expires_at"], row["revoked_at"], row["device_id"])
    return token, family


async def spend_token(db: Queries, token_hash: str) -> bool:
    """Mark a token used; False if it was already spent (a concurrent or replayed refresh)."""
    return (
        await db.execute(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
            token_hash,
            clock.now_ms(),
        )
        == 1
    )


async def touch_family(db: Queries, family_id: str, *, ttl_ms: int) -> None:
    now = clock.now_ms()
    await db.execute(
        "UPDATE refresh_families SET last_used_at = $2, expires_at = $3 WHERE id = $1", family_id, now, now + ttl_ms
    )


async def revoke_family(db: Queries, family_id: str, reason: str) -> None:
    await db.execute(
        "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
        family_id,
        clock.now_ms(),
        reason,
    )


async def revoke_all(db: Queries, user_id: str, reason: str, *, keep: str | None = None) -> int:
    return await db.execute(
        """UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3
           WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4""",
        user_id,
        clock.now_ms(),
        reason,
        keep or "",
    )


async def session_user(db: Queries, user_id: str, family_id: str) -> dict | None:
    """The user behind an access token, if the token's family is still live (one query per request)."""
    return await db.fetchrow(
        """SELECT u.id, u.email, u.is_admin, u.disabled, f.revoked_at, f.expires_at
           FROM users u JOIN refresh_families f ON f.user_id = u.id
           WHERE u.id = $1 AND f.id = $2""",
        user_id,
        family_id,
    )
