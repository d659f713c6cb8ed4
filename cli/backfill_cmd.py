"""`trainer backfill --user EMAIL --source strava|garmin --since DATE`: fetch a user's history.

Pages go into the webhook inbox, so the workers process them exactly like live events. The run is
safe to interrupt (Ctrl-C) and to repeat: it resumes from the last recorded page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from trainer_cli.common import console, database, fail, run, settings

from trainer import clock
from trainer.backfill import Progress as BackfillProgress
from trainer.backfill import run_backfill
from trainer.config import ensure_secret_key
from trainer.plugin_host import load_plugins, stop_plugins
from trainer.store import users
from trainer.store.accounts import TokenCipher

SCALE = 1000  # progress bar steps


def _doorbell(config):  # type: ignore[no-untyped-def]
    """Ring the shared queue so running workers start at once; memory:// reaches no other process."""
    if config.queue_url.startswith("memory://"):
        return None
    from trainer.ingest.queue import IngestQueue

    return IngestQueue(config).ring


def _wait_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def backfill_command(
    user: Annotated[str, typer.Option("--user", help="Email of the account.")],
    source: Annotated[str, typer.Option("--source", help="Plugin to backfill from, e.g. strava or garmin.")],
    since: Annotated[datetime, typer.Option("--since", formats=["%Y-%m-%d"], help="First day to fetch (YYYY-MM-DD).")],
) -> None:
    """Fetch a connected account's history since DATE into the inbox (resumable, safe to re-run)."""
    config = settings()
    start = since.replace(tzinfo=UTC)
    if start >= clock.now():
        fail("--since must be in the past")

    async def body():  # type: ignore[no-untyped-def]
        async with database(config) as db:
            account = await users.get_by_email(db, user)
            secret = ensure_secret_key(config)
            registry, host = await load_plugins(config, secret, db)
            started = clock.now_s()
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[events]} events, {task.fields[rate]}/min"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            try:
                with Progress(*columns, console=console) as progress:
                    task = progress.add_task(f"{source}", total=SCALE, events=0, rate="0")

                    def show(p: BackfillProgress) -> None:
                        minutes = max((clock.now_s() - started) / 60, 1 / 60)
                        fields = {"events": p.events, "rate": f"{p.events / minutes:.0f}"}
                        if p.waiting_s is not None:
                            text = f"{source}: waiting {_wait_text(p.waiting_s)} ({escape(p.note)})"
                        else:
                            text = f"{source}: {escape(p.note)}" + (" (resumed)" if p.resumed else "")
                        completed = None if p.fraction is None else round(p.fraction * SCALE)
                        progress.update(task, description=text, completed=completed, **fields)

                    result = await run_backfill(
                        db,
                        registry,
                        TokenCipher(secret),
                        user_id=account.id,
                        plugin=source,
                        since=start,
                        on_progress=show,
                        doorbell=_doorbell(config),
                    )
                    progress.update(task, completed=SCALE)
            finally:
                await stop_plugins(registry, host)
            return result

    result = run(body())
    console.print(
        f"{result.pages} pages, {result.events} events, {result.recorded} new in the inbox"
        + (" (resumed an interrupted run)" if result.resumed else "")
        + "; workers process them like webhook events",
        highlight=False,
    )
