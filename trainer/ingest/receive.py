"""Recording what a verified webhook says: route each event to its user, then commit it.

Events of vendor accounts nobody connected (an athlete who disconnected, a test push) are counted
and dropped, never recorded: there is no user to process them for, and vendors must still get their
200 or they retry for days. Replays hit the inbox's unique dedupe key and are dropped in the same
statement that would have inserted them.

Which user a vendor account belongs to is remembered for a few seconds, found accounts only: a
burst of one athlete's events costs one lookup, and an account connected a moment ago is never
missed. Remembering a link that was just removed changes nothing the pipeline does not already
handle: the event is recorded, finds no account, and is ignored, as it would have been had it
arrived a moment earlier.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.db import Database
from trainer.ingest.committer import GroupCommitter
from trainer.plugins import NewEvent
from trainer.store import accounts

OWNER_TTL_S = 10.0
MAX_OWNERS = 50_000


@dataclass(frozen=True)
class Receipt:
    recorded: list[str]  # ids of the new inbox rows (rung by the committer after its commit)
    duplicates: int
    unknown_users: int


class Receiver:
    def __init__(self, db: Database, committer: GroupCommitter, *, owner_ttl_s: float = OWNER_TTL_S) -> None:
        self.db = db
        self.committer = committer
        self.owner_ttl_s = owner_ttl_s
        self._owners: dict[tuple[str, str], tuple[str, float]] = {}

    async def receive(self, plugin: str, events: Sequence[NewEvent]) -> Receipt:
        """Record the events of connected accounts; returns what became of them."""
        owners = {e.external_user_id: await self._owner(plugin, e.external_user_id) for e in events}
        known = [(user_id, e) for e in events if (user_id := owners[e.external_user_id]) is not None]
        recorded = await self.committer.record(plugin, known) if known else []
        return Receipt(recorded, len(known) - len(recorded), len(events) - len(known))

    async def _owner(self, plugin: str, external_user_id: str) -> str | None:
        now = time.monotonic()
        remembered = self._owners.get((plugin, external_user_id))
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        user_id = await accounts.find_user_id(self.db, plugin, external_user_id)
        if user_id is not None:
            if len(self._owners) >= MAX_OWNERS:
                self._owners.clear()
            self._owners[(plugin, external_user_id)] = (user_id, now + self.owner_ttl_s)
        return user_id
