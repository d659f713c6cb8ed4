"""Extension point: what happens after the pipeline has processed one inbox event.

The pipeline calls `on_activity_processed` inside the transaction that marks the event done, after
its data is stored and the user's daily state recomputed. Anything written through `tx` (a
notification in the outbox, trainer.notify.outbox.enqueue) therefore exists exactly when the event
counts as processed: a pipeline run that fails or is retried leaves nothing behind, and one that
runs twice finds the same cause (`ProcessedEvent.inbox_id`) to deduplicate on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from trainer.db import Transaction
from trainer.notify.events import notify_processed


@dataclass(frozen=True)
class ProcessedEvent:
    """What one inbox event changed, for whoever reacts to it."""

    inbox_id: str
    user_id: str
    plugin: str
    kind: str
    created: list[str] = field(default_factory=list)  # ids of activities created
    updated: list[str] = field(default_factory=list)  # ids of activities changed
    deleted: int = 0  # activities removed
    dailies: list[dt.date] = field(default_factory=list)  # days whose vendor summary changed
    disconnected: bool = False  # the vendor account was unlinked
    from_day: dt.date | None = None  # earliest day changed (the recompute starts a day before it)
    recompute: Any = None  # trainer.engine.recompute.RecomputeResult, when a recompute ran


async def on_activity_processed(tx: Transaction, event: ProcessedEvent) -> None:
    """Called once per processed event, inside the transaction that marks it done.

    Writes the user's notifications about it into the outbox (trainer/notify/events.py). It must
    stay quick and must not call out of the process: it runs while the transaction holds the
    database's write lock; the delivery runner sends the messages after the commit.
    """
    await notify_processed(tx, event)
