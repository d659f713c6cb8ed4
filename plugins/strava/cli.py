"""`trainer plugins strava ...`: the application's webhook subscription.

`subscribe` runs in this CLI process, not in the server: Strava validates the callback URL while
the subscribe request is still open, so the running server must be free to answer that check. Run
it with the server up and reachable at its public_url.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from . import subscription

app = typer.Typer(help="Strava webhook subscription (one per Strava application).", no_args_is_help=True)


@app.command()
def subscribe(
    ctx: typer.Context,
    callback_url: Annotated[
        str | None, typer.Option(help="Where Strava pushes events (default: this server's webhook URL).")
    ] = None,
) -> None:
    """Create the subscription. The server must be running: Strava checks the callback meanwhile."""
    env = ctx.obj

    async def action(plugin: Any) -> tuple[int, str]:
        url = callback_url or plugin.host.webhook_url(plugin.name)
        return await subscription.create(plugin.host.http(plugin), plugin.settings, url), url

    sub_id, url = env.run(action)
    env.echo(f"subscribed: id {sub_id}, events go to {_redacted(url)}")
    env.echo(
        f"now set plugins.strava.subscription_id = {sub_id} (or TRAINER_PLUGINS__STRAVA__SUBSCRIPTION_ID) and restart"
    )


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the application's subscription, if any."""
    env = ctx.obj

    async def action(plugin: Any) -> tuple[list[dict[str, Any]], int | None]:
        return await subscription.list_all(plugin.host.http(plugin), plugin.settings), plugin.settings.subscription_id

    subs, configured = env.run(action)
    if not subs:
        env.echo("no subscription")
    for sub in subs:
        mark = "configured" if sub.get("id") == configured else "NOT the configured subscription_id"
        env.echo(f"id {sub.get('id')}: {_redacted(str(sub.get('callback_url', '')))} ({mark})")


@app.command()
def unsubscribe(
    ctx: typer.Context,
    subscription_id: Annotated[
        int | None, typer.Option("--id", help="Default: the configured subscription_id.")
    ] = None,
) -> None:
    """Delete the subscription: Strava stops sending events."""
    env = ctx.obj

    async def action(plugin: Any) -> int:
        target = subscription_id or plugin.settings.subscription_id
        if target is None:
            from trainer.errors import InvalidInput

            raise InvalidInput("no subscription id: pass --id or set plugins.strava.subscription_id")
        await subscription.delete(plugin.host.http(plugin), plugin.settings, target)
        return target

    env.echo(f"unsubscribed: id {env.run(action)}")


def _redacted(url: str) -> str:
    """Callback URLs carry the secret webhook path token: never print it whole."""
    head, sep, tail = url.partition("/webhooks/")
    if not sep:
        return url
    token, slash, rest = tail.partition("/")
    return f"{head}/webhooks/{token[:4]}…{slash}{rest}" if rest else f"{head}/webhooks/{token[:4]}…"
