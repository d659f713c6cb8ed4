"""Users: accounts, credentials and settings. Emails are unique case-insensitively."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainer import clock
from trainer.db import Queries, Row
from trainer.errors import Conflict, NotFound
from trainer.ids import new_id

_COLUMNS = "id, email, password_hash, is_admin, disabled, settings, created_at, updated_at, password_changed_at"


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    is_admin: bool
    disabled: bool
    settings: dict[str, Any]
    created_at: int
    updated_at: int
    password_changed_at: int

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


async def create(db: Queries, *, email: str, password_hash: str, is_admin: bool = False) -> User:
    now = clock.now_ms()
    if await find_by_email(db, email) is not None:
        raise Conflict("an account with this email already exists")
    # ON CONFLICT: a concurrent sign-up with the same email (PostgreSQL lets both pass the check
    # above) gets the same Conflict instead of a unique-violation error, i.e. a 500.
    row = await db.fetchrow(
        f"""INSERT INTO users (id, email, password_hash, is_admin, disabled, settings,
                               created_at, updated_at, password_changed_at)
            VALUES ($1, $2, $3, $4, FALSE, $5, $6, $6, $6) ON CONFLICT DO NOTHING RETURNING {_COLUMNS}""",
        new_id(),
        email,
        password_hash,
        is_admin,
        {},
        now,
    )
    if row is None:
        raise Conflict("an account with this email already exists")
    return User.from_row(row)


async def get(db: Queries, user_id: str) -> User:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    if row is None:
        raise NotFound("no such user")
    return User.from_row(row)


async def find_by_email(db: Queries, email: str) -> User | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower($1)", email)
    return None if row is None else User.from_row(row)


async def get_by_email(db: Queries, email: str) -> User:
    user = await find_by_email(db, email)
    if user is None:
        raise NotFound(f"no user with email {email}")
    return user


async def list_all(db: Queries) -> list[User]:
    return [User.from_row(r) for r in await db.fetch(f"SELECT {_COLUMNS} FROM users ORDER BY created_at, email")]


async def set_disabled(db: Queries, user_id: str, disabled: bool) -> None:
    changed = await db.execute(
        "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1", user_id, disabled, clock.now_ms()
    )
    if not changed:
        raise NotFound("no such user")


async def set_password_hash(db: Queries, user_id: str, password_hash: str) -> None:
    now = clock.now_ms()
    await db.execute(
        "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1",
        user_id,
        password_hash,
        now,
    )


async def set_settings(db: Queries, user_id: str, settings: dict[str, Any]) -> None:
    await db.execute("UPDATE users SET settings = $2, updated_at = $3 WHERE id = $1", user_id, settings, clock.now_ms())
