"""`trainer migrate`: bring the database schema up to this program's version."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from trainer_cli.common import console, run, settings

from trainer import clock
from trainer.db import create_database
from trainer.db import migrate as migrations


def migrate(
    show_status: Annotated[bool, typer.Option("--status", help="List migrations and whether each is applied.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be applied; change nothing.")] = False,
) -> None:
    """Apply pending schema migrations, each in its own transaction. Safe to run again."""
    config = settings()
    run(_migrate(config.resolved_database_url, show_status, dry_run))


async def _migrate(url: str, show_status: bool, dry_run: bool) -> None:
    db = create_database(url, pool_size=2)
    await db.open()
    try:
        if show_status:
            table = Table("version", "name", "applied")
            for m in await migrations.status(db):
                applied = "pending"
                if m.applied_at:
                    applied = clock.ms_to_datetime(m.applied_at).isoformat(timespec="seconds")
                table.add_row(f"{m.version:04d}", m.name, applied)
            console.print(table)
            return
        waiting = await migrations.pending(db)
        if not waiting:
            console.print("database schema is up to date; nothing to do")
            return
        if dry_run:
            for m in waiting:
                console.print(f"would apply {m.version:04d}_{m.name}", highlight=False)
            return
        for m in await migrations.migrate(db):
            console.print(f"applied {m.version:04d}_{m.name}", highlight=False)
    finally:
        await db.close()
