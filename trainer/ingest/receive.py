"""Recording what a verified webhook says: route each event to its user, then one commit.

Events of vendor accounts nobody connected (an athlete who disconnected, a test push) are counted
and dropped, never recorded: there is no user to process them for, and vendors must still get their
200 or they retry for days. Replays hit the inbox's unique dedupe key and are dropped in the same
statement that would have inserted them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trainer.db import Database
from trainer.ingest import inbox
from trainer.plugins import NewEvent
from trainer.store import accounts


@dataclass(frozen=True)
class Receipt:
    recorded: list[str]  # ids of the new inbox rows, to ring after the commit
    duplicates: int
    unknown_users: int


async def receive(db: Database, plugin: str, events: Sequence[NewEvent]) -> Receipt:
    owners: dict[str, str | None] = {}
    for event in events:
        if event.external_user_id not in owners:
            owners[event.external_user_id] = await accounts.find_user_id(db, plugin, event.external_user_id)
    known = [(user_id, e) for e in events if (user_id := owners[e.external_user_id]) is not None]
    recorded: list[str] = []
    if known:
        async with db.transaction() as tx:
            recorded = await inbox.insert_events(tx, plugin, known)
    return Receipt(recorded, len(known) - len(recorded), len(events) - len(known))
