"""`trainer config`: inspect the effective settings."""

from __future__ import annotations

import json

import typer
from trainer_cli.common import console, settings, state

from trainer.config import config_file, masked

app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


@app.command("show")
def show() -> None:
    """Print the effective settings (defaults < file < TRAINER_* variables), secrets masked."""
    config = settings()
    source = config_file(state.config_path)
    console.print(f"# file: {source if source else '(none)'}", highlight=False)
    doc = masked(config)
    doc["database_url (effective)"] = masked(config.model_copy(update={"database_url": config.resolved_database_url}))[
        "database_url"
    ]
    console.print_json(json.dumps(doc))
