"""`trainer webhooks urls`: the URLs to register with each vendor, secret path token included.

The only place the path token is ever shown: it is never logged (the access log redacts it). Treat
the output like a password.
"""

from __future__ import annotations

import typer
from rich.table import Table
from trainer_cli.common import console, run, settings

from trainer.config import ensure_secret_key
from trainer.ingest.paths import path_token, webhook_url
from trainer.plugin_host import load_plugins, stop_plugins
from trainer.plugins import WebhookReceiver

app = typer.Typer(help="Webhook endpoints for vendors.", no_args_is_help=True)


@app.command("urls")
def urls() -> None:
    """Show the webhook URL of every enabled plugin that receives webhooks (they contain a secret)."""
    config = settings()
    secret = ensure_secret_key(config)

    async def body() -> list[tuple[str, str, str, int]]:
        registry, host = await load_plugins(config, secret)
        try:
            rows = []
            for plugin in registry.with_capability(WebhookReceiver):
                for kind, spec in sorted(plugin.webhook_kinds.items()):
                    url = webhook_url(config, secret, plugin.name, kind)
                    rows.append((plugin.name, kind or "-", url, spec.max_body_bytes))
            return rows
        finally:
            await stop_plugins(registry, host)

    rows = run(body())
    if not rows:
        console.print("No enabled plugin receives webhooks.")
        return
    table = Table("plugin", "kind", "url", "body limit")
    for name, kind, url, limit in rows:
        table.add_row(name, kind, url, f"{limit / 1048576:g} MiB")
    console.print(table)
    if path_token(config, secret) is None:
        console.print('[yellow]webhook_path_token = "off": anyone who can reach the server can post events.[/]')
    else:
        console.print("These URLs contain this server's secret path token: share them only with the vendor.")
