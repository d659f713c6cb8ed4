"""What every command shares: settings from --config, one-line errors, an open database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from trainer import loops
from trainer.config import Settings, load_settings
from trainer.db import Database, create_database
from trainer.db.migrate import ensure_current, migrate
from trainer.errors import ConfigError, TrainerError
from trainer.loops import LoopChoice

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


class State:
    config_path: Path | None = None


state = State()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit non-zero: the CLI's only way of reporting a user's mistake."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings(**overrides: Any) -> Settings:
    try:
        return load_settings(state.config_path, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        fail(exc.message, 2)


def run(coro: Coroutine[Any, Any, T], loop: LoopChoice = "auto") -> T:
    """Run a command's async body; trainer's errors become one line and exit code 1 (config: 2)."""
    try:
        return loops.run(coro, loop)
    except ConfigError as exc:
        fail(exc.message, 2)
    except TrainerError as exc:
        fail(exc.message)


@asynccontextmanager
async def database(config: Settings, *, migrate_if_allowed: bool = True) -> AsyncIterator[Database]:
    """The configured database, brought up to date (when auto_migrate allows) and checked."""
    db = create_database(config.resolved_database_url, pool_size=2)
    await db.open()
    try:
        if migrate_if_allowed and config.auto_migrate:
            await migrate(db)
        await ensure_current(db)
        yield db
    finally:
        await db.close()
