"""Login throttling per account (exponential lock-out) and per client address (fixed window).

Counters live in the database, so limits hold across all server processes. The account key is the
lower-cased email whether or not an account exists, so throttling never reveals which emails are real.
"""

from __future__ import annotations

import math

from trainer import clock
from trainer.db import Database
from trainer.errors import RateLimited
from trainer.store import throttle as store
from trainer.store.throttle import Counter

MESSAGE = "too many failed sign-in attempts; try again in {s} seconds"


class LoginThrottle:
    def __init__(
        self, db: Database, *, max_failures: int, lockout_max_s: int, address_max: int, address_window_s: int
    ) -> None:
        self.db = db
        self.max_failures = max_failures
        self.lockout_max_ms = lockout_max_s * 1000
        self.address_max = address_max
        self.address_window_ms = address_window_s * 1000

    @staticmethod
    def account_key(email: str) -> str:
        return "acct:" + email.strip().lower()

    @staticmethod
    def address_key(address: str) -> str:
        return "addr:" + address

    async def check(self, email: str, address: str) -> None:
        """Raise RateLimited if either the account or the address is locked out right now."""
        now = clock.now_ms()
        account = await store.get(self.db, self.account_key(email))
        if account and account.locked_until > now:
            raise _limited(account.locked_until - now)
        per_address = await store.get(self.db, self.address_key(address))
        if (
            per_address
            and per_address.failures >= self.address_max
            and per_address.window_start + self.address_window_ms > now
        ):
            raise _limited(per_address.window_start + self.address_window_ms - now)

    async def failed(self, email: str, address: str) -> None:
        now = clock.now_ms()
        async with self.db.transaction() as tx:
            key = self.account_key(email)
            await tx.lock("throttle:" + key)
            old = await store.get(tx, key)
            failures = (old.failures if old else 0) + 1
            locked_until = 0
            if failures >= self.max_failures:
                # 1 s at the limit, doubling per further failure, capped.
                locked_until = now + min(1000 * 2 ** (failures - self.max_failures), self.lockout_max_ms)
            await store.put(tx, key, Counter(failures, old.window_start if old else now, locked_until))

            key = self.address_key(address)
            await tx.lock("throttle:" + key)
            old = await store.get(tx, key)
            if old is None or old.window_start + self.address_window_ms <= now:
                counter = Counter(1, now, 0)
            else:
                counter = Counter(old.failures + 1, old.window_start, 0)
            await store.put(tx, key, counter)

    async def succeeded(self, email: str) -> None:
        await store.clear(self.db, self.account_key(email))


def _limited(wait_ms: int) -> RateLimited:
    seconds = max(1, math.ceil(wait_ms / 1000))
    return RateLimited(MESSAGE.format(s=seconds), retry_after=seconds)
