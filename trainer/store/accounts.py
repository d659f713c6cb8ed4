"""Vendor account links: which trainer user a Strava athlete or Garmin user is, and their tokens.

Tokens are health-data keys, so they are encrypted at rest with AES-256-GCM under a key derived
from the server secret for this one purpose; the (plugin, user) pair is the associated data, so a
ciphertext copied onto another row does not decrypt. A database dump alone reveals no token.

Refreshing rotates the refresh token (the old one dies at once), so a refresh must happen in one
process at a time per account: `claim_refresh` takes a short lease on the row without holding a
transaction open during the vendor call (SQLite has a single writer), and `save_tokens` releases it.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trainer import clock
from trainer.config import Settings, ensure_secret_key
from trainer.db import Queries, Row, Transaction
from trainer.errors import Conflict, Unavailable
from trainer.keys import derive_key
from trainer.plugins import Account, TokenSet

__all__ = [
    "TokenCipher",
    "claim_refresh",
    "delete",
    "find_by_external",
    "find_user_id",
    "get",
    "get_with_settings",
    "list_for_user",
    "release_refresh",
    "save",
    "save_tokens",
]

_VERSION = "v1"
_NONCE_BYTES = 12
_COLUMNS = "user_id, plugin, external_user_id, tokens, scope, expires_at, refresh_lease_until, created_at, updated_at"


class TokenCipher:
    """Encrypts TokenSets for one server secret (key: HKDF(secret, "vendor-tokens"))."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(derive_key(secret, "vendor-tokens"))

    @classmethod
    def for_settings(cls, settings: Settings) -> TokenCipher:
        return cls(ensure_secret_key(settings))

    def encrypt(self, tokens: TokenSet, *, plugin: str, user_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(asdict(tokens), separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, _aad(plugin, user_id))
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, text: str, *, plugin: str, user_id: str) -> TokenSet:
        version, _, body = text.partition(":")
        try:
            if version != _VERSION:
                raise ValueError(version)
            raw = base64.b64decode(body, validate=True)
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(plugin, user_id))
            return TokenSet(**json.loads(plain))
        except (InvalidTag, ValueError, TypeError) as exc:
            # Wrong server secret or a damaged row: the account must be connected again.
            raise Unavailable(f"stored {plugin} tokens cannot be decrypted (was the server secret changed?)") from exc

    def encrypt_text(self, value: str, *, purpose: str) -> str:
        """Encrypt a short secret that is not a TokenSet (a PKCE verifier), bound to `purpose`."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), purpose.encode())
        return base64.b64encode(nonce + sealed).decode()

    def decrypt_text(self, text: str, *, purpose: str) -> str:
        try:
            raw = base64.b64decode(text, validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise Unavailable("stored secret cannot be decrypted") from exc


def _aad(plugin: str, user_id: str) -> bytes:
    return f"trainer/vendor-tokens/{plugin}/{user_id}".encode()


def _account(cipher: TokenCipher, row: Row) -> Account:
    tokens = cipher.decrypt(row["tokens"], plugin=row["plugin"], user_id=row["user_id"])
    return Account(
        user_id=row["user_id"], plugin=row["plugin"], external_user_id=row["external_user_id"], tokens=tokens
    )


async def find_user_id(db: Queries, plugin: str, external_user_id: str) -> str | None:
    """The trainer user connected as this vendor account (webhooks: no decryption needed)."""
    return await db.fetchval(
        "SELECT user_id FROM vendor_accounts WHERE plugin = $1 AND external_user_id = $2", plugin, external_user_id
    )


async def find_by_external(db: Queries, cipher: TokenCipher, plugin: str, external_user_id: str) -> Account | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM vendor_accounts WHERE plugin = $1 AND external_user_id = $2", plugin, external_user_id
    )
    return None if row is None else _account(cipher, row)


async def get(db: Queries, cipher: TokenCipher, user_id: str, plugin: str) -> Account | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM vendor_accounts WHERE user_id = $1 AND plugin = $2", user_id, plugin
    )
    return None if row is None else _account(cipher, row)


_JOINED_COLUMNS = ", ".join(f"a.{name.strip()}" for name in _COLUMNS.split(","))


async def get_with_settings(
    db: Queries, cipher: TokenCipher, user_id: str, plugin: str
) -> tuple[Account, dict[str, Any]] | None:
    """The account and its user's settings (as stored, not validated) in one read: the ingest
    pipeline needs both for every event, and on PostgreSQL each read is a round trip."""
    row = await db.fetchrow(
        f"""SELECT {_JOINED_COLUMNS}, u.settings AS user_settings
            FROM vendor_accounts AS a JOIN users AS u ON u.id = a.user_id
            WHERE a.user_id = $1 AND a.plugin = $2""",
        user_id,
        plugin,
    )
    return None if row is None else (_account(cipher, row), row["user_settings"])


async def list_for_user(db: Queries, user_id: str) -> list[dict[str, Any]]:
    """The user's connections without their tokens: plugin, external id, scope, connected since (ms)."""
    rows = await db.fetch(
        """SELECT plugin, external_user_id, scope, created_at FROM vendor_accounts
           WHERE user_id = $1 ORDER BY plugin""",
        user_id,
    )
    return [dict(r) for r in rows]


async def save(tx: Transaction, cipher: TokenCipher, account: Account) -> None:
    """Create or replace the user's link to this vendor (a reconnect replaces the tokens).

    Conflict when the vendor account is already linked to another trainer user: one vendor account
    delivers to exactly one user, or webhooks could not be routed.
    """
    owner = await find_user_id(tx, account.plugin, account.external_user_id)
    if owner is not None and owner != account.user_id:
        raise Conflict(f"this {account.plugin} account is already connected to another user of this server")
    now = clock.now_ms()
    await tx.execute(
        """INSERT INTO vendor_accounts (user_id, plugin, external_user_id, tokens, scope, expires_at,
                                        refresh_lease_until, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)
           ON CONFLICT (user_id, plugin) DO UPDATE SET external_user_id = excluded.external_user_id,
               tokens = excluded.tokens, scope = excluded.scope, expires_at = excluded.expires_at,
               refresh_lease_until = NULL, updated_at = excluded.updated_at""",
        account.user_id,
        account.plugin,
        account.external_user_id,
        cipher.encrypt(account.tokens, plugin=account.plugin, user_id=account.user_id),
        account.tokens.scope,
        _expires_ms(account.tokens),
        now,
    )


async def save_tokens(tx: Transaction, cipher: TokenCipher, user_id: str, plugin: str, tokens: TokenSet) -> bool:
    """Store refreshed tokens and release the refresh lease; False when the account is gone."""
    changed = await tx.execute(
        """UPDATE vendor_accounts SET tokens = $3, scope = $4, expires_at = $5, refresh_lease_until = NULL,
               updated_at = $6
           WHERE user_id = $1 AND plugin = $2""",
        user_id,
        plugin,
        cipher.encrypt(tokens, plugin=plugin, user_id=user_id),
        tokens.scope,
        _expires_ms(tokens),
        clock.now_ms(),
    )
    return changed > 0


async def claim_refresh(tx: Transaction, user_id: str, plugin: str, *, lease_ms: int) -> bool:
    """Take the account's refresh lease unless another process holds an unexpired one."""
    now = clock.now_ms()
    changed = await tx.execute(
        """UPDATE vendor_accounts SET refresh_lease_until = $3
           WHERE user_id = $1 AND plugin = $2 AND (refresh_lease_until IS NULL OR refresh_lease_until <= $4)""",
        user_id,
        plugin,
        now + lease_ms,
        now,
    )
    return changed > 0


async def release_refresh(db: Queries, user_id: str, plugin: str) -> None:
    """Give the lease back after a failed refresh, so the next attempt need not wait for it to expire."""
    await db.execute(
        "UPDATE vendor_accounts SET refresh_lease_until = NULL WHERE user_id = $1 AND plugin = $2", user_id, plugin
    )


async def delete(tx: Transaction, user_id: str, plugin: str) -> bool:
    """Forget the link (and its tokens); False when there was none."""
    return await tx.execute("DELETE FROM vendor_accounts WHERE user_id = $1 AND plugin = $2", user_id, plugin) > 0


async def row_for_refresh(db: Queries, cipher: TokenCipher, user_id: str, plugin: str) -> tuple[TokenSet, int] | None:
    """The stored tokens and the refresh lease's end (0: none), as one read."""
    row = await db.fetchrow(
        "SELECT plugin, user_id, tokens, refresh_lease_until FROM vendor_accounts WHERE user_id = $1 AND plugin = $2",
        user_id,
        plugin,
    )
    if row is None:
        return None
    return cipher.decrypt(row["tokens"], plugin=plugin, user_id=user_id), int(row["refresh_lease_until"] or 0)


def _expires_ms(tokens: TokenSet) -> int | None:
    return None if tokens.expires_at is None else int(tokens.expires_at) * 1000
