"""What follows a change of a user's activities or daily metrics: recompute their daily state.

Imports, uploads, disconnects and the vendor pipeline all end here, so the rule "recompute from
the day before the earliest changed day" is written once. The day before covers the difference
between an activity's own UTC offset and the user's configured time zone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from trainer.db import Database

log = logging.getLogger("trainer.after_write")


async def recompute_from(db: Database, user_id: str, days: Iterable[dt.date]) -> None:
    """Recompute the user's daily state from the earliest of `days`; a failure is logged (the data
    itself is stored, and the next recompute catches up)."""
    earliest = min(days, default=None)
    if earliest is None:
        return
    from trainer.engine.recompute import first_affected_day, recompute_user

    try:
        await recompute_user(db, user_id, first_affected_day(earliest))
    except Exception:
        log.exception("recompute after new data failed")
