"""sync.*: WatermelonDB's pullChanges/pushChanges over tRPC (protocol: docs/sync.md).

The app's `synchronize()` callbacks call these directly:

    pullChanges: (args) => trpc.sync.pullChanges.query(args)
    pushChanges: (args) => trpc.sync.pushChanges.mutate(args)

Inputs accept unknown keys (a newer WatermelonDB may add some; sync must keep working), and
`lastPulledAt` arrives in a query string, so "null"/"undefined" mean null.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from trainer import metrics
from trainer.engine.triggers import after_push
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.rpc.streaming import Streamed
from trainer.sync import retention
from trainer.sync.pull import MigrationRequest, PullRequest, pull_json
from trainer.sync.push import PushRequest, apply_push
from trainer.sync.tables import TABLES, Column, Table

router = Router("sync")

_PY_TYPES: dict[str, Any] = {
    "text": str,
    "number": float,
    "integer": int,
    "boolean": bool,
    "instant": int,
    "day": str,
    "json": str,
}


def _raw_model(table: Table) -> type[BaseModel]:
    """The record of `table` as pulled: `id` plus the declared columns in their WatermelonDB types."""
    fields: dict[str, Any] = {"id": (str, ...)}
    for column in table.columns:
        fields[column.name] = (_column_type(column), Field(..., description=_describe(column)))
    name = "".join(part.title() for part in table.name.split("_")) + "Raw"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _column_type(column: Column) -> Any:
    py = _PY_TYPES[column.kind]
    return py | None if column.optional else py


def _describe(column: Column) -> str:
    notes = {"instant": "milliseconds since the epoch", "day": "YYYY-MM-DD", "json": "JSON-encoded text"}
    parts = [notes[column.kind]] if column.kind in notes else []
    if not column.writable:
        parts.append("set by the server, read-only")
    return "; ".join(parts)


def _changes_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for table in TABLES.values():
        raw = _raw_model(table)
        title = raw.__name__.removesuffix("Raw") + "Changes"
        changes = create_model(
            title,
            __config__=ConfigDict(extra="forbid"),
            created=(list[raw], ...),  # type: ignore[valid-type]
            updated=(list[raw], ...),  # type: ignore[valid-type]
            deleted=(list[str], ...),
        )
        fields[table.name] = (changes, ...)
    return create_model("SyncChanges", __config__=ConfigDict(extra="forbid"), **fields)


SyncChanges = _changes_model()


def _null_words(value: Any) -> Any:
    return None if value in ("null", "undefined", "") else value


class MigrationColumns(BaseModel):
    table: str
    columns: list[str]


class MigrationInput(BaseModel):
    """WatermelonDB's migration info: tables and columns added since schema version `from`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: int = Field(alias="from")
    tables: list[str] = []
    columns: list[MigrationColumns] = []


class PullInput(Input):
    model_config = ConfigDict(extra="ignore")

    last_pulled_at: int | None = Field(None, description="The previous pull's timestamp; null on the first sync")
    schema_version: int | None = None
    migration: MigrationInput | None = None

    @field_validator("last_pulled_at", "schema_version", mode="before")
    @classmethod
    def _query_string_nulls(cls, value: Any) -> Any:
        value = _null_words(value)
        return int(value) if isinstance(value, float) else value


class PullResult(Output):
    changes: SyncChanges  # type: ignore[valid-type]
    timestamp: int = Field(description="Opaque watermark: pass it back as lastPulledAt")
    reset_required: bool = Field(
        description="True: this is a full snapshot; delete local synced records absent from it (docs/sync.md)"
    )


class PushTableChanges(BaseModel):
    model_config = ConfigDict(extra="ignore")

    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    deleted: list[Any] = []


class PushInput(Input):
    model_config = ConfigDict(extra="ignore")

    changes: dict[str, PushTableChanges]
    last_pulled_at: int | None = Field(description="The timestamp of the pull this push follows")

    @field_validator("last_pulled_at", mode="before")
    @classmethod
    def _whole_ms(cls, value: Any) -> Any:
        return int(value) if isinstance(value, float) else value


class PushResult(Output):
    experimental_rejected_ids: dict[str, list[str]] | None = Field(
        None, description="Records the server could not store (kept unsynced on the device)"
    )


@router.query("pullChanges")
async def pull_changes(ctx: Context, input: PullInput) -> Streamed[PullResult]:
    """Everything the calling device has not seen since `lastPulledAt` (streamed)."""
    migration = None
    if input.migration is not None:
        migration = MigrationRequest.whitelisted(
            input.migration.tables, {c.table: c.columns for c in input.migration.columns}
        )
    request = PullRequest(ctx.user.id, ctx.user.device_id, input.last_pulled_at, migration)
    return Streamed(pull_json(ctx.db, request))


# cleans_own_input: a NUL pasted into a note must be stripped, not refuse every push of the device forever
@router.mutation("pushChanges", max_body_bytes="sync_max_push_bytes", cleans_own_input=True)
async def push_changes(ctx: Context, input: PushInput) -> PushResult:
    """Apply the device's local changes in one transaction, or fail with CONFLICT and apply nothing."""
    changes = {name: entry.model_dump() for name, entry in input.changes.items()}
    request = PushRequest(ctx.user.id, ctx.user.device_id, input.last_pulled_at, changes)
    rejected = await apply_push(
        ctx.db,
        request,
        max_records=ctx.settings.sync_max_push_records,
        retention_cutoff=retention.cutoff(ctx.settings.tombstone_retention_days),
    )
    metrics.observe_sync(sum(len(v) for entry in changes.values() for v in entry.values()), "push")
    await after_push(ctx.db, ctx.user.id, changes)
    return PushResult(experimental_rejected_ids=rejected or None)
