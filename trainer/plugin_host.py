"""The core's side of the plugin interface: what `PluginHost` gives each plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.config import Settings
from trainer.keys import derive_key
from trainer.plugins import Account, Plugin, PluginHost, RateLimits, Registry, TokenSet, discover

if TYPE_CHECKING:
    from trainer.db import Database


class CoreHost(PluginHost):
    def __init__(self, settings: Settings, secret: str, db: Database | None = None) -> None:
        self._settings = settings
        self._secret = secret
        self._clients: dict[str, Any] = {}
        self._limits: dict[str, Any] = {}
        self._cipher: Any = None
        self.db = db

    def http(self, plugin: Plugin) -> Any:
        """One outbound client per plugin, limited to the hosts the plugin's settings name."""
        from trainer.outbound import OutboundHTTP

        client = self._clients.get(plugin.name)
        if client is None:
            client = self._clients[plugin.name] = OutboundHTTP(plugin.allowed_hosts(), name=plugin.name)
        return client

    @property
    def public_url(self) -> str:
        return self._settings.public_url.rstrip("/") or f"http://{self._settings.host}:{self._settings.port}"

    def derive_key(self, purpose: str) -> bytes:
        return derive_key(self._secret, "plugin:" + purpose)

    def webhook_url(self, plugin: str, kind: str = "") -> str:
        from trainer.ingest.paths import webhook_url

        return webhook_url(self._settings, self._secret, plugin, kind)

    def _database(self) -> Database:
        if self.db is None:
            raise RuntimeError("this plugin host has no database (pass db= to load_plugins)")
        return self.db

    async def fresh_tokens(self, plugin: Plugin, account: Account, *, force: bool = False) -> TokenSet:
        from trainer.store.accounts import TokenCipher
        from trainer.token_refresh import fresh_tokens

        if self._cipher is None:  # one key derivation per host, not one per vendor call
            self._cipher = TokenCipher(self._secret)
        return await fresh_tokens(self._database(), self._cipher, plugin, account, force=force)

    def rate_limits(self, plugin: Plugin) -> RateLimits:
        from trainer.rate_windows import DatabaseRateLimits

        limits = self._limits.get(plugin.name)
        if limits is None:  # one per plugin: its leases are this process's share of the quota
            limits = self._limits[plugin.name] = DatabaseRateLimits(self._database(), plugin.name)
        return limits

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


async def load_plugins(settings: Settings, secret: str, db: Database | None = None) -> tuple[Registry, CoreHost]:
    """Discover and start the plugins of this process (`db`: for token refresh and rate limits)."""
    host = CoreHost(settings, secret, db)
    registry = discover(settings.plugins, host)
    for plugin in registry.plugins.values():
        await plugin.start()
    return registry, host


async def stop_plugins(registry: Registry, host: CoreHost) -> None:
    for plugin in registry.plugins.values():
        await plugin.stop()
    await host.close()
