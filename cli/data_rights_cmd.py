"""`trainer user export` and `trainer user delete`: a user's data rights, for the administrator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from trainer_cli.common import console, database, fail, run, settings

from trainer import data_rights
from trainer.config import Settings, ensure_secret_key
from trainer.data_rights import DeletionReport, Manifest
from trainer.store import users


def export(
    email: Annotated[str, typer.Argument(help="Email of the account")],
    path: Annotated[Path, typer.Argument(help="Zip file to write (manifest.json, tables/*.json, streams/*)")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace PATH if it exists.")] = False,
) -> None:
    """Export everything stored about one user as a zip of JSON, CSV and GPX files."""
    config = settings()
    if path.exists() and not overwrite:
        fail(f"{path} already exists; choose another name or pass --overwrite")
    partial = path.with_name(path.name + ".partial")
    try:
        manifest = run(_export(config, email, partial))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    rows = sum(t["rows"] for t in manifest.tables.values())
    console.print(
        f"exported {email}: {rows} rows in {len(manifest.tables)} tables, {len(manifest.streams)} activity streams"
        f" -> {path} ({path.stat().st_size / (1 << 20):.1f} MiB)",
        highlight=False,
    )


async def _export(config: Settings, email: str, target: Path) -> Manifest:
    async with database(config) as db:
        user = await users.get_by_email(db, email)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds personal data
        with os.fdopen(fd, "wb") as out:
            return await data_rights.export_user(db, user.id, out)


def delete(
    email: Annotated[str, typer.Argument(help="Email of the account")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user and every row of theirs for good; tell connected vendors to revoke access.

    Sessions end at once. Backups made earlier still hold the user until they are rotated.
    """
    config = settings()
    if not yes:
        typer.confirm(f"Delete {email} and all of their data? This cannot be undone", abort=True)
    report = run(_delete(config, email))
    table = Table("table", "rows deleted")
    for name, count in sorted(report.rows_deleted.items()):
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"deleted {email} ({report.user_id}); {report.sessions_ended} session(s) ended", highlight=False)
    for plugin in report.vendors_deauthorized:
        console.print(f"{plugin}: access revoked", highlight=False)
    for plugin, why in sorted(report.vendors_failed.items()):
        console.print(f"[yellow]{plugin}: could not revoke access ({why}); the user should do it there[/]")


async def _delete(config: Settings, email: str) -> DeletionReport:
    from trainer.plugin_host import load_plugins, stop_plugins

    async with database(config) as db:
        user = await users.get_by_email(db, email)
        secret = ensure_secret_key(config)
        registry, host = await load_plugins(config, secret, db)
        try:
            cipher = None
            try:
                from trainer.store.accounts import TokenCipher

                cipher = TokenCipher(secret)
            except ImportError:
                pass
            return await data_rights.delete_user(
                db, user.id, registry=registry, cipher=cipher, retention_days=config.tombstone_retention_days
            )
        finally:
            await stop_plugins(registry, host)
