"""`trainer backup` and `trainer restore`: the database to a file and back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from trainer_cli.common import console, err_console, fail, settings

from trainer import backup as backups
from trainer.errors import TrainerError


def backup(
    path: Annotated[Path, typer.Argument(help="File to write the backup to.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace PATH if it exists.")] = False,
) -> None:
    """Back up the database. SQLite: a consistent copy while the server keeps running.

    PostgreSQL: runs pg_dump (custom format) when it is on PATH, else prints how to.
    Keep the secret key with the backup: stored vendor tokens are encrypted with it.
    """
    config = settings()
    if not config.is_sqlite:
        _pg_dump(config.resolved_database_url, path, overwrite)
        return
    try:
        info = backups.backup_sqlite(backups.sqlite_path(config.resolved_database_url), path, overwrite=overwrite)
    except TrainerError as exc:
        fail(exc.message)
    size = f"{info.size_bytes / (1 << 20):.1f} MiB"
    console.print(f"backed up to {info.path} ({size}, schema version {info.schema_version:04d})", highlight=False)
    if config.secret_key is None:
        secret = config.data_dir / "secret_key"
        console.print(
            f"also keep a copy of {secret}: vendor tokens in the backup are encrypted with it", highlight=False
        )


def _pg_dump(url: str, path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        fail(f"{path} already exists; choose another name or pass --overwrite")
    if backups.find_pg_dump() is None:
        err_console.print("pg_dump is not on PATH.", highlight=False)
        console.print(backups.pg_guidance(), highlight=False)
        raise typer.Exit(1)
    argv, env = backups.pg_dump_command(url, path)
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        err_console.print(f"[bold red]error:[/] pg_dump failed: {reason}", highlight=False, soft_wrap=True)
        console.print(backups.pg_guidance(), highlight=False)
        raise typer.Exit(1)
    os.chmod(path, 0o600)
    console.print(f"backed up with pg_dump to {path} ({path.stat().st_size / (1 << 20):.1f} MiB)", highlight=False)


def restore(
    path: Annotated[Path, typer.Argument(help="A backup made by `trainer backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Restore even if the database looks open in another process.")
    ] = False,
) -> None:
    """Replace the SQLite database with a backup; the current file is kept as <name>.bak.

    Stop `trainer serve` and `trainer worker` first. The backup must be a trainer database of this
    version or older (pending migrations are applied at the next start or by `trainer migrate`).
    """
    config = settings()
    if not config.is_sqlite:
        console.print(backups.pg_guidance(), highlight=False)
        raise typer.Exit(1)
    try:
        result = backups.restore_sqlite(path, backups.sqlite_path(config.resolved_database_url), force=force)
    except TrainerError as exc:
        fail(exc.message)
    console.print(
        f"restored {result.database} from {result.restored_from} (schema version {result.schema_version:04d})",
        highlight=False,
    )
    if result.previous_kept_as is not None:
        console.print(f"the previous database is kept as {result.previous_kept_as}", highlight=False)
    if result.pending_migrations:
        console.print(
            f"{result.pending_migrations} migration(s) to apply: run `trainer migrate` (or start with auto_migrate)",
            highlight=False,
        )
