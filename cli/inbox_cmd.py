"""`trainer inbox`: see and act on webhook events — what waits, what failed and why, and retry it.

Dead letters (state failed) stay until an operator retries or purges them; `retry` rings the queue
so running workers take them at once. Values that look like tokens are masked in everything shown.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from trainer_cli.common import console, database, fail, run, settings

from trainer import clock
from trainer.config import Settings
from trainer.db import Database
from trainer.errors import NotFound
from trainer.ingest import inbox
from trainer.ingest.queue import IngestQueue
from trainer.store import users

app = typer.Typer(help="Inspect and repair the webhook inbox: waiting, done and failed events.", no_args_is_help=True)

StateOpt = Annotated[
    list[str] | None,
    typer.Option("--state", "-s", help="pending, processing, done, failed or ignored (repeatable)."),
]
PluginOpt = Annotated[str | None, typer.Option("--plugin", "-p", help="Only this plugin's events.")]
UserOpt = Annotated[str | None, typer.Option("--user", "-u", help="Only this user's events (email or id).")]


def _states(values: list[str] | None) -> tuple[inbox.State, ...]:
    for value in values or []:
        if value not in inbox.STATES:
            fail(f"unknown state {value!r}; use one of {', '.join(inbox.STATES)}", 2)
    return tuple(values or ())  # type: ignore[arg-type]


async def _filter(db: Database, states: tuple[inbox.State, ...], plugin: str | None, user: str | None) -> inbox.Filter:
    user_id = None
    if user:
        found = await users.find_by_email(db, user) if "@" in user else None
        user_id = found.id if found else user
        if "@" in user and found is None:
            raise NotFound(f"no user with email {user}")
    return inbox.Filter(states=states, plugin=plugin, user_id=user_id)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _in(ms: int) -> str:
    seconds = (ms - clock.now_ms()) / 1000
    if seconds <= 0:
        return "due"
    return f"in {seconds:.0f} s" if seconds < 120 else f"in {seconds / 60:.0f} min"


@app.command("list")
def list_events(
    state: StateOpt = None,
    plugin: PluginOpt = None,
    user: UserOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="Most rows to show.")] = 50,
) -> None:
    """Events, newest first, with counts per state."""
    config = settings()

    async def body() -> tuple[list[inbox.InboxRow], dict[str, int]]:
        async with database(config) as db:
            where = await _filter(db, _states(state), plugin, user)
            return await inbox.list_rows(db, where, limit=limit), await inbox.count_by_state(db, where)

    rows, counts = run(body())
    table = Table("id", "received", "plugin/kind", "user", "object", "state", "tries", "next / finished", "last error")
    for row in rows:
        later = _in(row.next_attempt_at) if row.state == "pending" else _when(row.finished_at or row.locked_at)
        table.add_row(
            row.id,
            _when(row.received_at),
            f"{row.plugin}/{row.kind}",
            row.user_id[:8],
            escape(row.object_id[:24]),
            row.state,
            str(row.attempts),
            later,
            escape(inbox.redact(row.last_error or "", 60)),
        )
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()), highlight=False)


@app.command("show")
def show(event_id: Annotated[str, typer.Argument(help="Event id (a unique prefix of it is enough).")]) -> None:
    """Everything about one event: states, attempts, the full last error and the payload."""
    config = settings()

    async def body() -> inbox.InboxRow:
        async with database(config) as db:
            return await inbox.get(db, event_id)

    row = run(body())
    pending = row.state == "pending"
    fields = {
        "id": row.id,
        "plugin / kind": f"{row.plugin} / {row.kind}",
        "user": row.user_id,
        "vendor user": row.external_user_id,
        "object": row.object_id or "(the account)",
        "event time": _when(row.event_time),
        "state": row.state,
        "attempts": str(row.attempts),
        "received": _when(row.received_at),
        "next attempt": _when(row.next_attempt_at) + (f" ({_in(row.next_attempt_at)})" if pending else ""),
        "claimed": f"{_when(row.locked_at)} by {row.locked_by}" if row.locked_by else "",
        "finished": _when(row.finished_at),
        "dedupe key": row.dedupe_key,
        "last error": row.last_error or "",
        "result": json.dumps(row.result) if row.result else "",
        "payload": json.dumps(row.payload, sort_keys=True),
    }
    for name, value in fields.items():
        console.print(f"[bold]{name:>14}[/]  {escape(inbox.redact(value, 4000))}", highlight=False, soft_wrap=True)


@app.command("retry")
def retry(
    event_ids: Annotated[list[str] | None, typer.Argument(help="Event ids; or use the filters.")] = None,
    state: StateOpt = None,
    plugin: PluginOpt = None,
    user: UserOpt = None,
) -> None:
    """Give failed (or ignored) events a fresh set of attempts and ring the queue for them.

    With ids: those events. Without: every event matching the filters (default --state failed).
    """
    config = settings()
    states = _states(state) or ("failed",)
    if set(states) - {"failed", "ignored"}:
        fail("only failed and ignored events can be retried", 2)

    async def body() -> list[str]:
        async with database(config) as db:
            if event_ids:
                revived = await inbox.revive(db, ids=event_ids)
            else:
                revived = await inbox.revive(db, filter=await _filter(db, states, plugin, user))
        await _ring(config, revived)
        return revived

    revived = run(body())
    console.print(f"{len(revived)} event(s) queued again", highlight=False)


@app.command("purge")
def purge(
    state: StateOpt = None,
    plugin: PluginOpt = None,
    user: UserOpt = None,
    older_than_days: Annotated[
        float, typer.Option("--older-than-days", min=0, help="Only events finished this many days ago.")
    ] = 0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete finished events (done, ignored, failed; default: all three). Never waiting ones."""
    config = settings()
    states = _states(state)
    if set(states) & {"pending", "processing"}:
        fail("only done, ignored and failed events can be purged", 2)
    described = "/".join(states or ("done", "ignored", "failed"))
    if not yes:
        typer.confirm(f"Delete {described} events{f' of {plugin}' if plugin else ''}?", abort=True)

    async def body() -> int:
        async with database(config) as db:
            where = await _filter(db, states, plugin, user)
            return await inbox.purge(db, where, older_than_ms=int(older_than_days * 86_400_000))

    console.print(f"{run(body())} event(s) deleted", highlight=False)


async def _ring(config: Settings, row_ids: list[str]) -> None:
    """Ring the shared queue; with memory:// (one process only) the server's sweeper finds them."""
    if row_ids and not config.queue_url.startswith("memory://"):
        await IngestQueue(config).ring(row_ids)
