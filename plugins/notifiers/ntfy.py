"""ntfy: notifications to a topic on ntfy.sh or a self-hosted ntfy server, no app store account needed.

    [plugins.ntfy]
    base_url = "https://ntfy.example.org"
    access_token = "tk_..."     # optional: a token allowed to publish to protected topics

A device registers its topic name as the address, and may bring its own access token as the
device secret (it then wins over the server-wide one). The message text is the body; title,
priority and tags travel as headers, non-ASCII titles RFC 2047-encoded as ntfy expects.
"""

from __future__ import annotations

import re
from email.header import Header
from typing import ClassVar

from pydantic import SecretStr
from trainer_plugins.notifiers.common import TRANSIENT_ERRORS, BaseURLSettings, by_status, host_of

from trainer.notify.capabilities import TargetChecker
from trainer.plugins import Delivery, Notification, Notifier, Plugin, Target

_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")

# How each category shows on the phone: ntfy priority (1-5) and tags (emoji short codes).
_STYLE: dict[str, tuple[int, str]] = {
    "activity_analyzed": (3, "runner"),
    "plan_adapted": (3, "calendar"),
    "low_readiness": (4, "warning"),
    "connection_lost": (4, "electric_plug"),
    "backfill_finished": (2, "white_check_mark"),
}


class NtfySettings(BaseURLSettings):
    base_url: str = "https://ntfy.sh"
    access_token: SecretStr | None = None


class NtfyPlugin(Plugin, Notifier, TargetChecker):
    name = "ntfy"
    provider: ClassVar[str] = "ntfy"
    version = "1"
    description = "Notifications to an ntfy topic (ntfy.sh or self-hosted)"
    settings_model = NtfySettings
    settings: NtfySettings

    def allowed_hosts(self) -> set[str]:
        return {host_of(self.settings.base_url)}

    def check_target(self, address: str) -> None:
        if not _TOPIC.match(address):
            raise ValueError("an ntfy topic is 1-64 letters, digits, '-' or '_'")

    async def deliver(self, target: Target, notification: Notification) -> Delivery:
        if not _TOPIC.match(target.address):
            return Delivery("invalid_target", "not an ntfy topic name")
        priority, tag = _STYLE.get(notification.category, (3, "bell"))
        headers = {"Title": _header_text(notification.title), "Priority": str(priority), "Tags": tag}
        token = target.secret or (self.settings.access_token.get_secret_value() if self.settings.access_token else None)
        if token:
            headers["Authorization"] = "Bearer " + token
        url = f"{self.settings.base_url}/{target.address}"
        try:
            async with self.host.http(self).request(
                "POST", url, data=notification.body.encode(), headers=headers
            ) as resp:
                verdict = by_status(resp.status, "ntfy", resp.headers.get("Retry-After"))
        except TRANSIENT_ERRORS as exc:
            return Delivery("retry", f"ntfy unreachable: {type(exc).__name__}")
        return verdict or Delivery("sent", "published")


def _header_text(text: str) -> str:
    """HTTP headers are ASCII: anything else goes RFC 2047-encoded, which ntfy decodes."""
    if text.isascii():
        return text
    return Header(text, "utf-8").encode()
