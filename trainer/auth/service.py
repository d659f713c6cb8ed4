"""Accounts and sessions: register, login, refresh with rotation, logout, password changes.

Failure messages are deliberately uniform: a wrong password and an unknown email read the same and
take the same time (a dummy argon2 verification runs when no account matches).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trainer import clock
from trainer.auth.passwords import PasswordHasher
from trainer.auth.throttle import LoginThrottle
from trainer.auth.tokens import AccessTokens, hash_token, new_refresh_token
from trainer.config import Settings
from trainer.db import Database, Queries
from trainer.errors import InvalidInput, PermissionDenied, Unauthenticated
from trainer.store import invites, sessions, users
from trainer.store.users import User

log = logging.getLogger("trainer.auth")

BAD_CREDENTIALS = "email or password is incorrect"
BAD_REFRESH = "refresh token is not valid; sign in again"
BAD_INVITE = "invite code is not valid (unknown, used or expired)"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Session:
    """What a successful login or refresh hands to the app."""

    user: User
    access_token: str
    access_expires_at: int  # seconds since epoch
    refresh_token: str
    family_id: str


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller of a request."""

    id: str
    email: str
    is_admin: bool
    family_id: str
    device_id: str | None


class AuthService:
    def __init__(self, db: Database, settings: Settings, secret: str) -> None:
        self.db = db
        self.settings = settings
        self.passwords = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        self.tokens = AccessTokens(
            secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_s=settings.access_token_ttl_s,
        )
        self.throttle = LoginThrottle(
            db,
            max_failures=settings.login_max_failures,
            lockout_max_s=settings.login_lockout_max_s,
            address_max=settings.login_max_failures_per_address,
            address_window_s=settings.login_address_window_s,
        )
        self._refresh_ttl_ms = settings.refresh_token_ttl_days * DAY_MS

    # -- accounts -------------------------------------------------------------------------------

    def check_password_policy(self, password: str) -> None:
        if len(password) < self.settings.password_min_length:
            raise InvalidInput(f"password must be at least {self.settings.password_min_length} characters")
        if len(password) > 1024:
            raise InvalidInput("password must be at most 1024 characters")

    async def create_user(self, email: str, password: str, *, is_admin: bool = False) -> User:
        """Create an account directly (the admin CLI; registration rules do not apply)."""
        self.check_password_policy(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.transaction() as tx:
            return await users.create(tx, email=email, password_hash=password_hash, is_admin=is_admin)

    async def register(self, email: str, password: str, invite_code: str | None) -> User:
        """Self-service sign-up under the `registration` setting (open, invite or closed)."""
        mode = self.settings.registration
        if mode == "closed":
            raise PermissionDenied("registration is closed on this server; ask its administrator for an account")
        if mode == "invite" and not invite_code:
            raise PermissionDenied("registration on this server needs an invite code")
        self.check_password_policy(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.transaction() as tx:
            if mode == "invite" and not await invites.is_valid(tx, hash_token(invite_code or "")):
                raise PermissionDenied(BAD_INVITE)  # checked first: no code, no hint which emails exist
            user = await users.create(tx, email=email, password_hash=password_hash)
            if mode == "invite" and not await invites.redeem(tx, hash_token(invite_code or ""), user.id):
                raise PermissionDenied(BAD_INVITE)
        log.info("user registered", extra={"user_id": user.id})
        return user

    async def create_invite(self, *, created_by: str | None = None, note: str | None = None) -> tuple[str, int]:
        """A new single-use invite code and its expiry (ms)."""
        code = new_refresh_token()[:22]
        expires = await invites.create(
            self.db, hash_token(code), ttl_ms=self.settings.invite_ttl_days * DAY_MS, created_by=created_by, note=note
        )
        return code, expires

    async def set_password(self, user_id: str, password: str) -> None:
        """Set a new password and end every session of the user (admin reset)."""
        self.check_password_policy(password)
        password_hash = await self.passwords.hash(password)
        async with self.db.transaction() as tx:
            await users.set_password_hash(tx, user_id, password_hash)
            await sessions.revoke_all(tx, user_id, "password reset")

    # -- sessions -------------------------------------------------------------------------------

    async def login(
        self, email: str, password: str, *, address: str, user_agent: str | None = None, device_id: str | None = None
    ) -> Session:
        await self.throttle.check(email, address)
        user = await users.find_by_email(self.db, email)
        if user is None:
            await self.passwords.verify_dummy(password)
            ok = False
        else:
            ok = await self.passwords.verify(user.password_hash, password)
        if not ok or user is None:
            await self.throttle.failed(email, address)
            raise Unauthenticated(BAD_CREDENTIALS)
        await self.throttle.succeeded(email)
        if user.disabled:
            raise PermissionDenied("this account is disabled")
        if self.passwords.needs_rehash(user.password_hash):
            await users.set_password_hash(self.db, user.id, await self.passwords.hash(password))
        async with self.db.transaction() as tx:
            family = await sessions.create_family(
                tx, user.id, ttl_ms=self._refresh_ttl_ms, user_agent=user_agent, device_id=device_id
            )
            return await self._issue(tx, user, family.id, device_id)

    async def refresh(self, refresh_token: str) -> Session:
        """Spend a refresh token for a new pair. A token spent before revokes its whole family."""
        token_hash = hash_token(refresh_token)
        async with self.db.transaction() as tx:
            found = await sessions.find_token(tx, token_hash)
            if found is None:
                raise Unauthenticated(BAD_REFRESH)
            _token, family = found
            await tx.lock("family:" + family.id)
            if family.revoked_at is not None or family.expires_at <= clock.now_ms():
                raise Unauthenticated(BAD_REFRESH)
            if not await sessions.spend_token(tx, token_hash):
                await sessions.revoke_family(tx, family.id, "refresh token reuse")
                reuse = True
            else:
                reuse = False
                user = await users.get(tx, family.user_id)
                if user.disabled:
                    raise PermissionDenied("this account is disabled")
                await sessions.touch_family(tx, family.id, ttl_ms=self._refresh_ttl_ms)
                session = await self._issue(tx, user, family.id, family.device_id)
        if reuse:
            # Committed above: the revocation must stick even though this request fails.
            log.warning(
                "refresh token reuse detected; session family revoked",
                extra={"user_id": family.user_id, "family_id": family.id},
            )
            raise Unauthenticated(BAD_REFRESH)
        return session

    async def _issue(self, tx: Queries, user: User, family_id: str, device_id: str | None) -> Session:
        refresh = new_refresh_token()
        await sessions.add_token(tx, family_id, hash_token(refresh))
        access, expires = self.tokens.issue(user.id, family_id, device_id)
        return Session(user, access, expires, refresh, family_id)

    async def logout(self, current: CurrentUser) -> None:
        await sessions.revoke_family(self.db, current.family_id, "logout")

    async def logout_all(self, current: CurrentUser) -> int:
        return await sessions.revoke_all(self.db, current.id, "logout everywhere")

    async def change_password(self, current: CurrentUser, old_password: str, new_password: str) -> None:
        """Change the password; every other session ends, this one stays signed in."""
        user = await users.get(self.db, current.id)
        if not await self.passwords.verify(user.password_hash, old_password):
            raise Unauthenticated("current password is incorrect")
        self.check_password_policy(new_password)
        password_hash = await self.passwords.hash(new_password)
        async with self.db.transaction() as tx:
            await users.set_password_hash(tx, user.id, password_hash)
            await sessions.revoke_all(tx, user.id, "password changed", keep=current.family_id)

    async def authenticate(self, access_token: str) -> CurrentUser:
        """The caller behind a bearer token: valid signature, not expired, session live, account enabled."""
        claims = self.tokens.verify(access_token)
        row = await sessions.session_user(self.db, claims.user_id, claims.family_id)
        if row is None or row["revoked_at"] is not None:
            raise Unauthenticated("session has ended; sign in again")
        if row["disabled"]:
            raise PermissionDenied("this account is disabled")
        return CurrentUser(row["id"], row["email"], row["is_admin"], claims.family_id, claims.device_id)
