"""devices.*: where the caller's notifications go (push tokens, ntfy topics, webhook URLs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trainer.errors import InvalidInput
from trainer.notify import sealing
from trainer.notify.capabilities import TargetChecker
from trainer.plugins import Notifier
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.store import devices
from trainer.store.devices import Device

router = Router("devices")

Platform = Literal["ios", "android", "web", "desktop", "other"]


class RegisterInput(Input):
    provider: str = Field(min_length=1, max_length=40, description="Notifier: expo, ntfy, webhook ...")
    token: str = Field(min_length=1, max_length=2048, description="Push token, ntfy topic or webhook URL")
    platform: Platform = "other"
    app_version: str | None = Field(None, max_length=50)
    device_id: str | None = Field(
        None, max_length=64, description="The app install's id; the one signed in with (auth deviceId) wins"
    )
    secret: str | None = Field(
        None, min_length=1, max_length=500, description="Per-address secret (webhook signing key, ntfy token)"
    )


class UnregisterInput(Input):
    """Which of the caller's addresses to remove: by id, by provider + token, or by app install.

    With nothing given, every address of the install the caller signed in with goes (sign-out)."""

    id: str | None = Field(None, max_length=64)
    provider: str | None = Field(None, max_length=40)
    token: str | None = Field(None, max_length=2048)
    device_id: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _token_needs_provider(self) -> UnregisterInput:
        if self.token is not None and self.provider is None:
            raise ValueError("token needs its provider")
        return self


class DeviceInfo(Output):
    id: str
    provider: str
    token_hint: str = Field(description="The token's last characters, to recognise it; never the whole token")
    device_id: str | None
    platform: str
    app_version: str | None
    active: bool
    inactive_reason: str | None = Field(description="Why sending stopped (e.g. DeviceNotRegistered)")
    has_secret: bool
    current: bool = Field(description="Registered by the app install making this call")
    created_at: int = Field(description="Milliseconds since the epoch")
    last_sent_at: int | None = Field(description="Milliseconds since the epoch")


class UnregisterResult(Output):
    removed: int


def _info(device: Device, current_device: str | None) -> DeviceInfo:
    return DeviceInfo(
        id=device.id,
        provider=device.provider,
        token_hint=_hint(device.token),
        device_id=device.device_id,
        platform=device.platform,
        app_version=device.app_version,
        active=device.active,
        inactive_reason=device.inactive_reason,
        has_secret=device.secret_sealed is not None,
        current=current_device is not None and device.device_id == current_device,
        created_at=device.created_at,
        last_sent_at=device.last_sent_at,
    )


def _hint(token: str) -> str:
    tail = token.rstrip("]")[-4:]
    return "…" + tail if len(token) > 8 else "…"


def _notifier(ctx: Context, provider: str) -> Notifier:
    notifier = ctx.services.plugins.get(provider, Notifier)
    if notifier is None:
        known = sorted(n.provider for n in ctx.services.plugins.with_capability(Notifier))
        raise InvalidInput(
            f"provider: this server cannot deliver through {provider!r}",
            details={"providers": known},
        )
    return notifier


@router.mutation("register")
async def register(ctx: Context, input: RegisterInput) -> DeviceInfo:
    """Send the caller's notifications to this address. Registering an address again refreshes it;
    an address another account had moves to the caller."""
    notifier = _notifier(ctx, input.provider)
    if isinstance(notifier, TargetChecker):
        try:
            notifier.check_target(input.token)
        except ValueError as exc:
            raise InvalidInput(f"token: {exc}") from None
    sealed = None
    if input.secret is not None:
        key = sealing.key_for(notifier)  # type: ignore[arg-type]  # a Notifier is always a Plugin too
        sealed = sealing.seal(key, input.secret, bound_to=f"{input.provider}:{input.token}")
    device_id = ctx.user.device_id or input.device_id
    async with ctx.db.transaction() as tx:
        device = await devices.register(
            tx,
            ctx.user.id,
            provider=input.provider,
            token=input.token,
            device_id=device_id,
            platform=input.platform,
            app_version=input.app_version,
            secret_sealed=sealed,
        )
    return _info(device, ctx.user.device_id)


@router.mutation("unregister")
async def unregister(ctx: Context, input: UnregisterInput) -> UnregisterResult:
    """Stop sending to some of the caller's addresses (unknown ones are not an error: removal is idempotent)."""
    filters = input.model_dump(exclude_none=True)
    if not filters:
        if ctx.user.device_id is None:
            raise InvalidInput("say which address to remove: id, provider and token, or deviceId")
        filters = {"device_id": ctx.user.device_id}
    removed = await devices.unregister(ctx.db, ctx.user.id, **filters)
    return UnregisterResult(removed=removed)


@router.query("list")
async def list_devices(ctx: Context) -> list[DeviceInfo]:
    """The caller's registered addresses, including ones a provider reported gone (active = false)."""
    return [_info(d, ctx.user.device_id) for d in await devices.list_for_user(ctx.db, ctx.user.id)]
