"""The core's side of the plugin interface: what `PluginHost` gives each plugin."""

from __future__ import annotations

from typing import Any

from trainer.config import Settings
from trainer.keys import derive_key
from trainer.plugins import Plugin, PluginHost, Registry, discover


class CoreHost(PluginHost):
    def __init__(self, settings: Settings, secret: str) -> None:
        self._settings = settings
        self._secret = secret
        self._clients: dict[str, Any] = {}

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

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


async def load_plugins(settings: Settings, secret: str) -> tuple[Registry, CoreHost]:
    """Discover and start the plugins of this process."""
    host = CoreHost(settings, secret)
    registry = discover(settings.plugins, host)
    for plugin in registry.plugins.values():
        await plugin.start()
    return registry, host


async def stop_plugins(registry: Registry, host: CoreHost) -> None:
    for plugin in registry.plugins.values():
        await plugin.stop()
    await host.close()
