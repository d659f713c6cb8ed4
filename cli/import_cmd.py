"""`trainer import --user EMAIL PATH...`: import activity files (FIT, GPX, TCX, gzipped or not).

Folders are walked recursively (Strava and Garmin bulk exports), each file gets one line — imported,
duplicate, or refused with the reason — and the exit code says whether anything was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from trainer_cli.common import console, database, fail, run, settings

from trainer.after_write import recompute_from
from trainer.config import ensure_secret_key
from trainer.imports import FileOutcome, import_file
from trainer.plugin_host import load_plugins, stop_plugins
from trainer.plugins import FileImporter
from trainer.store import users

STYLE = {"imported": "green", "duplicate": "yellow", "refused": "red"}


def _expand(paths: list[Path]) -> tuple[list[Path], list[FileOutcome]]:
    """Files to import (folders recursively, hidden files skipped) and outcomes for missing paths."""
    files: list[Path] = []
    missing: list[FileOutcome] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts))
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append(FileOutcome(str(path), "refused", reason="no such file or folder"))
    return files, missing


def _line(outcome: FileOutcome, shown: str) -> str:
    status = outcome.status
    text = f"[{STYLE[status]}]{status:<9}[/] {escape(shown)}"
    if status == "imported" and len(outcome.activity_ids) > 1:
        text += f" ({len(outcome.activity_ids)} activities)"
    if outcome.reason:
        text += f": {escape(outcome.reason)}"
    return text


def import_command(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).", show_default=False)],
    user: Annotated[str, typer.Option("--user", help="Email of the account the activities belong to.")],
) -> None:
    """Import activity files for a user. Exit code 1 if any file was refused."""
    config = settings()
    files, outcomes = _expand(paths)
    for outcome in outcomes:
        console.print(_line(outcome, outcome.name), highlight=False, soft_wrap=True)
    if not files and not outcomes:
        fail("no files found")

    async def body() -> list[FileOutcome]:
        done: list[FileOutcome] = []
        async with database(config) as db:
            account = await users.get_by_email(db, user)
            registry, host = await load_plugins(config, ensure_secret_key(config), db)
            try:
                importers = registry.with_capability(FileImporter)
                if not importers:
                    fail("no file importer plugin is enabled (see `trainer plugins list`)")
                columns = (
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                )
                with Progress(*columns, console=console, transient=True) as progress:
                    task = progress.add_task("importing", total=len(files))
                    for path in files:
                        outcome = await import_file(
                            db, importers, account.id, path, display_name=str(path), recompute=False
                        )
                        progress.console.print(_line(outcome, str(path)), highlight=False, soft_wrap=True)
                        done.append(outcome)
                        progress.advance(task)
                await recompute_from(db, account.id, [d for o in done for d in o.days])
            finally:
                await stop_plugins(registry, host)
        return done

    results = outcomes + run(body())
    counts = {status: sum(1 for o in results if o.status == status) for status in STYLE}
    activities = sum(len(o.activity_ids) for o in results if o.status == "imported")
    console.print(
        f"{len(results)} files: {counts['imported']} imported ({activities} activities), "
        f"{counts['duplicate']} duplicates, {counts['refused']} refused",
        highlight=False,
    )
    if counts["refused"]:
        raise typer.Exit(1)
