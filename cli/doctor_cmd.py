"""`trainer doctor`: check this deployment and say how to fix what is wrong."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table
from trainer_cli.common import console, state

from trainer import doctor
from trainer.config import config_file, load_settings

STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def doctor_command() -> None:
    """Check settings, database, schema, queue, plugins, clock, disk and the secret key file.

    Read-only: safe beside a running server. Exit status 1 when a check fails (warnings pass).
    """
    source = config_file(state.config_path)
    origin = f"file {source}" if source else "defaults and TRAINER_* variables"
    findings = asyncio.run(doctor.diagnose(lambda: load_settings(state.config_path), origin))
    table = Table("check", "status", "detail", "how to fix", show_lines=False)
    for f in findings:
        table.add_row(f.check, STYLE[f.status], f.detail, f.hint)
    console.print(table)
    failed = [f.check for f in findings if f.status == "fail"]
    if failed:
        console.print(f"[bold red]{len(failed)} check(s) failed:[/] {', '.join(failed)}")
        raise typer.Exit(1)
    console.print("[green]all checks passed[/]")
