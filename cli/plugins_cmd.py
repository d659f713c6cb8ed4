"""`trainer plugins`: what is installed, and the admin commands plugins bring along.

`trainer plugins list` shows every entry point of the `trainer.plugins` group, including the ones
that failed to load and why. A plugin that offers commands (`Plugin.commands()`) gets them mounted
as `trainer plugins <name> ...`, found lazily so `trainer --help` never imports every plugin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Any

import click
import typer
from rich.markup import escape
from rich.table import Table
from trainer_cli.common import console, database, run, settings
from typer.core import TyperGroup

from trainer.config import ensure_secret_key
from trainer.errors import ConfigError
from trainer.plugin_host import CoreHost, load_plugins, stop_plugins
from trainer.plugins import ENTRY_POINT_GROUP, CommandEnv, Plugin, discover


class CliEnv(CommandEnv):
    """What a plugin's command gets as `ctx.obj`: this deployment's plugin, started, with a database."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, action: Callable[[Plugin], Awaitable[Any]]) -> Any:
        config = settings()

        async def body() -> Any:
            async with database(config) as db:
                registry, host = await load_plugins(config, ensure_secret_key(config), db)
                try:
                    plugin = registry.plugins.get(self.name)
                    if plugin is None:
                        raise ConfigError(
                            f"plugin {self.name} is not enabled (see [plugins.{self.name}] in the config)"
                        )
                    return await action(plugin)
                finally:
                    await stop_plugins(registry, host)

        return run(body())

    def echo(self, message: str) -> None:
        console.print(escape(message), highlight=False, soft_wrap=True)


def _plugin_commands(name: str) -> click.Command | None:
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name != name:
            continue
        try:
            cls = entry.load()
            commands = cls.commands() if isinstance(cls, type) and issubclass(cls, Plugin) else None
        except Exception:  # a broken plugin shows up in `plugins list`; it just has no commands
            return None
        if commands is None:
            return None
        command = typer.main.get_command(commands)
        command.name = name
        return command
    return None


class PluginsGroup(TyperGroup):
    """`list` plus one sub-group per plugin that brings commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = super().list_commands(ctx)
        extra = sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP) if _plugin_commands(e.name) is not None)
        return own + [name for name in extra if name not in own]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        command = _plugin_commands(cmd_name)
        if command is not None:
            ctx.obj = CliEnv(cmd_name)  # inherited by the plugin's commands' contexts
        return command


app = typer.Typer(cls=PluginsGroup, help="Installed plugins and their commands.", no_args_is_help=True)


@app.command("list")
def list_plugins() -> None:
    """Every installed plugin: version, enabled, capabilities, and why a plugin was skipped."""
    config = settings()
    try:
        registry = discover(config.plugins, CoreHost(config, ensure_secret_key(config)))
    except ConfigError as exc:
        console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        raise typer.Exit(2) from None
    table = Table("name", "version", "enabled", "capabilities", "package", "error")
    for info in sorted(registry.report, key=lambda i: i.name):
        table.add_row(
            escape(info.name),
            escape(info.version),
            "yes" if info.enabled else "no",
            ", ".join(info.capabilities),
            escape(info.distribution),
            f"[red]{escape(info.error)}[/]" if info.error else "",
        )
    console.print(table)
