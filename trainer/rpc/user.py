"""user.*: the signed-in user's profile and settings."""

from __future__ import annotations

from pydantic import Field

from trainer.engine.triggers import after_settings_saved
from trainer.profile import SettingsPatch, UserSettings
from trainer.rpc.context import Context
from trainer.rpc.router import Output, Router
from trainer.store import users
from trainer.store.users import User

router = Router("user")


class Profile(Output):
    id: str
    email: str
    is_admin: bool
    created_at: int = Field(description="Milliseconds since the epoch")
    settings: UserSettings


def profile_of(user: User) -> Profile:
    return Profile(
        id=user.id,
        email=user.email,
        is_admin=user.is_admin,
        created_at=user.created_at,
        settings=UserSettings.model_validate(user.settings),
    )


@router.query("getProfile")
async def get_profile(ctx: Context) -> Profile:
    """The caller's account and settings (the physiology the analysis uses, units, time zone ...)."""
    return profile_of(await users.get(ctx.db, ctx.user.id))


@router.mutation("updateSettings")
async def update_settings(ctx: Context, input: SettingsPatch) -> Profile:
    """Change some settings; keys not sent stay as they are, null resets one to its default.

    A change of physiology (HR max/rest, LTHR, sex, zone model) re-analyses recent activities, and a
    time-zone change moves every day, before this returns: the next pull and dashboard agree with it.
    """
    async with ctx.db.transaction() as tx:
        user = await users.get(tx, ctx.user.id)
        old = UserSettings.model_validate(user.settings)
        settings = input.apply(old)
        await users.set_settings(tx, user.id, settings.model_dump(mode="json"))
    await after_settings_saved(ctx.db, ctx.user.id, old, settings)
    return profile_of(await users.get(ctx.db, ctx.user.id))
