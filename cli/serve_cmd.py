"""`trainer serve`: the HTTP API (and, by default, the embedded task queue worker)."""

from __future__ import annotations

from typing import Annotated

import typer
from aiohttp import web
from trainer_cli.common import console, fail, settings

from trainer import logs, loops
from trainer.app import create_app
from trainer.config import Settings, ensure_secret_key
from trainer.errors import ConfigError, TrainerError
from trainer.ingest import routes as ingest_routes
from trainer.ingest.accesslog import RedactingAccessLogger
from trainer.ingest.queue import describe as describe_queue


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 8080]", min=1, max=65535)] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Only serve HTTP; run `trainer worker` elsewhere for the queue.")
    ] = False,
) -> None:
    """Run the server. With no configuration it uses SQLite in ./trainer-data and listens on 127.0.0.1:8080.

    SIGINT or SIGTERM stop it gracefully: in-flight requests finish, then connections close.
    """
    config = settings(host=host, port=port)
    if no_worker and config.queue_url.startswith("memory://"):
        fail("queue_url = memory:// is consumed only inside this process: drop --no-worker or use another queue", 2)
    logs.configure(config.log_level, config.log_format)
    try:
        ensure_secret_key(config)
    except TrainerError as exc:
        fail(exc.message, 2)
    try:
        loop = loops.loop_factory(config.event_loop)()
    except ConfigError as exc:
        fail(exc.message, 2)
    app = create_app(config)
    if not no_worker:
        ingest_routes.embed_worker(app, config.ingest_workers)
    console.print(_banner(config, worker=not no_worker), highlight=False, soft_wrap=True)  # one line in logs
    try:
        web.run_app(
            app,
            loop=loop,
            host=config.host,
            port=config.port,
            shutdown_timeout=config.shutdown_timeout_s,
            print=None,
            access_log_format='%{X-Request-ID}o %a "%r" %s %b %Tfs',
            access_log_class=RedactingAccessLogger,  # webhook paths carry a secret token
        )
    except OSError as exc:
        fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}")
    except TrainerError as exc:
        fail(exc.message)


def _banner(config: Settings, *, worker: bool) -> str:
    where = config.resolved_database_url
    db = f"SQLite at {where.removeprefix('sqlite:///')}" if config.is_sqlite else "PostgreSQL"
    queue = f"{config.ingest_workers} worker thread(s) on the {describe_queue(config)}" if worker else "no worker"
    return f"trainer listening on http://{config.host}:{config.port} ({db}; {queue}); Ctrl-C to stop"
