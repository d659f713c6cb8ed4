"""`trainer user`: accounts, for the administrator."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from trainer_cli import data_rights_cmd
from trainer_cli.common import console, database, fail, run, settings

from trainer import clock
from trainer.auth.service import AuthService
from trainer.config import Settings, ensure_secret_key
from trainer.store import users

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input instead of prompting.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            fail("no password on standard input")
        return line
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


async def _auth(config: Settings, action):  # type: ignore[no-untyped-def]
    async with database(config) as db:
        return await action(AuthService(db, config, ensure_secret_key(config)), db)


@app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="Email address (the login name)")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account. Works whatever the `registration` setting says."""
    config = settings()
    if "@" not in email or len(email) > 254:
        fail(f"{email!r} is not an email address")
    password = _password(password_stdin)
    user = run(_auth(config, lambda auth, db: auth.create_user(email, password, is_admin=admin)))
    console.print(f"created {'admin ' if admin else ''}user {user.email} ({user.id})", highlight=False)


@app.command("list")
def list_users() -> None:
    """List accounts."""
    config = settings()

    async def body(auth, db):  # type: ignore[no-untyped-def]
        return await users.list_all(db)

    table = Table("email", "id", "admin", "status", "created")
    for user in run(_auth(config, body)):
        created = clock.ms_to_datetime(user.created_at).date().isoformat()
        status = "disabled" if user.disabled else "active"
        table.add_row(user.email, user.id, "yes" if user.is_admin else "", status, created)
    console.print(table)


def _set_disabled(email: str, disabled: bool) -> None:
    config = settings()

    async def body(auth, db):  # type: ignore[no-untyped-def]
        user = await users.get_by_email(db, email)
        await users.set_disabled(db, user.id, disabled)
        if disabled:
            from trainer.store import sessions

            await sessions.revoke_all(db, user.id, "account disabled")

    run(_auth(config, body))
    console.print(f"{'disabled' if disabled else 'enabled'} {email}", highlight=False)


@app.command("disable")
def disable(email: Annotated[str, typer.Argument(help="Email of the account")]) -> None:
    """Disable an account: its sessions end and it cannot sign in."""
    _set_disabled(email, True)


@app.command("enable")
def enable(email: Annotated[str, typer.Argument(help="Email of the account")]) -> None:
    """Enable a disabled account again."""
    _set_disabled(email, False)


@app.command("reset-password")
def reset_password(
    email: Annotated[str, typer.Argument(help="Email of the account")], password_stdin: PasswordStdin = False
) -> None:
    """Set a new password for an account; all its sessions end."""
    config = settings()
    password = _password(password_stdin)

    async def body(auth, db):  # type: ignore[no-untyped-def]
        user = await users.get_by_email(db, email)
        await auth.set_password(user.id, password)

    run(_auth(config, body))
    console.print(f"password changed for {email}; all of its sessions were signed out", highlight=False)


@app.command("invite")
def invite(note: Annotated[str | None, typer.Option(help="A note to remember who it is for.")] = None) -> None:
    """Create a single-use invite code for `registration = "invite"`."""
    config = settings()
    code, expires = run(_auth(config, lambda auth, db: auth.create_invite(note=note)))
    until = clock.ms_to_datetime(expires).date().isoformat()
    console.print(f"invite code: [bold]{code}[/] (valid until {until}, single use)")


app.command("export")(data_rights_cmd.export)
app.command("delete")(data_rights_cmd.delete)
