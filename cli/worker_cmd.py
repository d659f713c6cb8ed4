"""`trainer worker`: a queue consumer without the HTTP server, to scale processing out.

Processes up to --workers events at once on one event loop with its own database pool
(trainer/ingest/consumer.py). The first SIGTERM or SIGINT stops taking events and lets running ones
finish (up to shutdown_timeout_s); a second one stops at once, and the events cut off are handed on
by the sweeper after `ingest_lease_s`. Run one per core you want to use.
"""

from __future__ import annotations

from typing import Annotated

import typer
from trainer_cli.common import console, database, fail, run, settings

from trainer import logs
from trainer.config import Settings, ensure_secret_key
from trainer.errors import TrainerError
from trainer.ingest.consumer import run_worker
from trainer.ingest.queue import describe


def worker(
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, max=256, help="Events processed at once [default: ingest_workers]"),
    ] = None,
) -> None:
    """Process queued webhook events (and sweep the inbox) until stopped."""
    config = settings()
    if config.queue_url.startswith("memory://"):
        fail("queue_url = memory:// lives inside one process; use the default SQLite queue or redis://", 2)
    logs.configure(config.log_level, config.log_format)
    try:
        ensure_secret_key(config)
    except TrainerError as exc:
        fail(exc.message, 2)
    count = workers or config.ingest_workers
    run(_check_database(config), config.event_loop)
    console.print(f"trainer worker: {count} at a time from the {describe(config)}; Ctrl-C to stop", highlight=False)
    run(run_worker(config, count), config.event_loop)


async def _check_database(config: Settings) -> None:
    """Fail before consuming if the database is unreachable or its schema is not current."""
    async with database(config):
        pass
