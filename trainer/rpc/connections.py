"""connections.*: the signed-in user's links to vendor accounts (Strava, Garmin, plugins).

The app starts the browser flow with `connections.start` and opens the returned URL in a browser;
see trainer/connections.py for why the flow looks the way it does.
"""

from __future__ import annotations

from pydantic import Field

from trainer import connections
from trainer.config import ensure_secret_key
from trainer.plugins import OAuthConnector
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.store import accounts
from trainer.store.accounts import TokenCipher

router = Router("connections")


class PluginInput(Input):
    plugin: str = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")


class ConnectLink(Output):
    url: str = Field(description="Open in a browser: it leads to the service's consent screen")
    expires_at: int = Field(description="Milliseconds since the epoch; the link works once, until then")


class Connection(Output):
    plugin: str
    description: str
    connected: bool
    external_user_id: str | None = None
    scope: str | None = None
    connected_at: int | None = Field(None, description="Milliseconds since the epoch")


def _public_url(ctx: Context) -> str:
    return ctx.settings.public_url.rstrip("/") or f"{ctx.request.scheme}://{ctx.request.host}"


@router.mutation("start")
async def start(ctx: Context, input: PluginInput) -> ConnectLink:
    """A single-use link (valid 5 minutes, bound to this session) that connects a vendor account."""
    token, expires = await connections.start(
        ctx.db, ctx.services.plugins, user_id=ctx.user.id, family_id=ctx.user.family_id, plugin=input.plugin
    )
    return ConnectLink(url=f"{_public_url(ctx)}/connect/{input.plugin}?token={token}", expires_at=expires)


@router.query("list")
async def list_connections(ctx: Context) -> list[Connection]:
    """Every service this server can connect, and whether the caller connected it."""
    linked = {row["plugin"]: row for row in await accounts.list_for_user(ctx.db, ctx.user.id)}
    result = []
    for plugin in ctx.services.plugins.with_capability(OAuthConnector):
        row = linked.get(plugin.name)
        result.append(
            Connection(
                plugin=plugin.name,
                description=plugin.description,
                connected=row is not None,
                external_user_id=None if row is None else row["external_user_id"],
                scope=None if row is None else row["scope"],
                connected_at=None if row is None else row["created_at"],
            )
        )
    return result


@router.mutation("disconnect")
async def disconnect(ctx: Context, input: PluginInput) -> bool:
    """Disconnect a service (the service is told, too); true if it was connected."""
    cipher = TokenCipher(ensure_secret_key(ctx.settings))
    return await connections.disconnect(ctx.db, ctx.services.plugins, cipher, user_id=ctx.user.id, plugin=input.plugin)
