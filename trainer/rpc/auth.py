"""auth.*: sign-up, sign-in, token refresh with rotation, sign-out, password change."""

from __future__ import annotations

from pydantic import EmailStr, Field

from trainer.auth.service import Session
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.rpc.user import Profile, profile_of

router = Router("auth")


class RegisterInput(Input):
    email: EmailStr = Field(max_length=254)
    password: str = Field(max_length=1024)
    invite_code: str | None = Field(None, max_length=100)
    device_id: str | None = Field(None, max_length=64)


class LoginInput(Input):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    device_id: str | None = Field(None, max_length=64, description="Stable id of the app install, if known")


class RefreshInput(Input):
    refresh_token: str = Field(max_length=200)


class ChangePasswordInput(Input):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class AuthResult(Output):
    token_type: str = "Bearer"
    access_token: str
    access_token_expires_at: int = Field(description="Milliseconds since the epoch")
    refresh_token: str
    user: Profile


class LogoutAllResult(Output):
    sessions_ended: int


def _result(session: Session) -> AuthResult:
    return AuthResult(
        access_token=session.access_token,
        access_token_expires_at=session.access_expires_at * 1000,
        refresh_token=session.refresh_token,
        user=profile_of(session.user),
    )


@router.mutation("register", public=True)
async def register(ctx: Context, input: RegisterInput) -> AuthResult:
    """Create an account (subject to the server's `registration` setting) and sign in."""
    auth = ctx.services.auth
    await auth.register(input.email, input.password, input.invite_code)
    session = await auth.login(
        input.email, input.password, address=ctx.client_address, user_agent=ctx.user_agent, device_id=input.device_id
    )
    return _result(session)


@router.mutation("login", public=True)
async def login(ctx: Context, input: LoginInput) -> AuthResult:
    """Sign in with email and password: a short-lived access token and a rotating refresh token."""
    session = await ctx.services.auth.login(
        input.email, input.password, address=ctx.client_address, user_agent=ctx.user_agent, device_id=input.device_id
    )
    return _result(session)


@router.mutation("refresh", public=True)
async def refresh(ctx: Context, input: RefreshInput) -> AuthResult:
    """Trade a refresh token for a new pair. Each refresh token works once; reuse ends the session."""
    return _result(await ctx.services.auth.refresh(input.refresh_token))


@router.mutation("logout")
async def logout(ctx: Context) -> None:
    """End this session (its refresh token and access tokens stop working)."""
    await ctx.services.auth.logout(ctx.user)


@router.mutation("logoutAll")
async def logout_all(ctx: Context) -> LogoutAllResult:
    """End every session of this account, on every device."""
    return LogoutAllResult(sessions_ended=await ctx.services.auth.logout_all(ctx.user))


@router.mutation("changePassword")
async def change_password(ctx: Context, input: ChangePasswordInput) -> None:
    """Change the password; every other session ends, this one stays signed in."""
    await ctx.services.auth.change_password(ctx.user, input.current_password, input.new_password)
