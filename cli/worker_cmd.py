"""`trainer worker`: queue consumers without the HTTP server, to scale processing out.

Runs Huey's thread consumer in the foreground. SIGTERM stops it gracefully (running events finish,
up to shutdown_timeout_s); SIGINT stops it at once, and the events it was processing are handed on
by the sweeper after `ingest_lease_s`. Each worker thread processes events on its own event loop
with its own database connections (trainer/ingest/runtime.py).
"""

from __future__ import annotations

from typing import Annotated

import typer
from trainer_cli.common import console, database, fail, run, settings

from trainer import logs
from trainer.config import ensure_secret_key
from trainer.errors import TrainerError
from trainer.ingest.queue import IngestQueue, describe


def worker(
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, max=64, help="Consumer threads [default: ingest_workers, 2]"),
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
    run(_check_database(config))
    queue = IngestQueue(config)
    count = workers or config.ingest_workers
    consumer = queue.consumer(count, graceful_signal="TERM")
    console.print(f"trainer worker: {count} thread(s) on the {describe(config)}; Ctrl-C to stop", highlight=False)
    queue.request_sweep()  # what a previous run left behind, now rather than in a minute
    consumer.run()


async def _check_database(config) -> None:  # type: ignore[no-untyped-def]
    """Fail before starting threads if the database is unreachable or its schema is not current."""
    async with database(config):
        pass
