"""`trainer`: the one program — server, worker and admin commands."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Annotated

import typer
from trainer_cli import (
    backfill_cmd,
    backup_cmd,
    codegen_cmd,
    config_cmd,
    doctor_cmd,
    import_cmd,
    inbox_cmd,
    migrate_cmd,
    plugins_cmd,
    serve_cmd,
    user_cmd,
    webhooks_cmd,
    worker_cmd,
)
from trainer_cli.common import console, state

from trainer import __version__

app = typer.Typer(
    name="trainer",
    help="Self-hosted backend for an endurance-training app: API, sync, webhooks, analysis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="TRAINER_CONFIG",
            help="TOML settings file (default: ./trainer.toml if present). TRAINER_* variables override it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    state.config_path = config


@app.command()
def version() -> None:
    """Print the version of trainer and of the Python running it."""
    console.print(f"trainer {__version__} (Python {platform.python_version()})", highlight=False)


app.command("serve")(serve_cmd.serve)
app.command("worker")(worker_cmd.worker)
app.command("migrate")(migrate_cmd.migrate)
app.add_typer(user_cmd.app, name="user")
app.add_typer(config_cmd.app, name="config")
app.add_typer(inbox_cmd.app, name="inbox")
app.add_typer(webhooks_cmd.app, name="webhooks")
app.add_typer(plugins_cmd.app, name="plugins")
app.command("import")(import_cmd.import_command)
app.command("backfill")(backfill_cmd.backfill_command)
app.command("doctor")(doctor_cmd.doctor_command)
app.command("codegen")(codegen_cmd.codegen)
app.command("backup")(backup_cmd.backup)
app.command("restore")(backup_cmd.restore)


def main() -> None:
    app()
