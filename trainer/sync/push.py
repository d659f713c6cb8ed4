"""sync.pushChanges: apply a device's local changes, all or nothing.

Order of work, all in one transaction that first takes the user's stamp (and with it the user's
lock, so two devices pushing at once are applied one after the other):
1. every id is checked: malformed, or owned by another user (live row or tombstone) -> the whole push
   is refused with one generic message that says nothing about the other user;
2. conflicts: a pushed record changed on the server after `lastPulledAt` (by anyone but this device),
   or an `updated` record the server has deleted -> CONFLICT, nothing applied; the app pulls (merging
   per column, local changes win) and pushes again;
3. created/updated are upserts of the writable columns (computed columns are ignored), cleaned by
   values.from_client; a record whose required column is unusable is skipped and reported in
   `experimentalRejectedIds` instead of failing the push;
4. references are checked after the parent tables are applied: a child of a parent that does not
   exist (deleted on another device, or not the user's) is dropped with a tombstone, so the device
   deletes it too (no orphans); an unknown completed activity is cleared;
5. deletions, children before parents; deleting a plan deletes (and tombstones) its workouts.

A row keeps `changed_by_device` = the pushing device only if the server stored exactly what the
device sent; otherwise the mark is cleared so the cleaned row goes back to the device on its next pull.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer.db import Database, Row, Transaction
from trainer.errors import Conflict, InvalidInput, PayloadTooLarge
from trainer.ids import is_valid_id
from trainer.store.stamps import next_stamp, sync_state
from trainer.sync import rows
from trainer.sync.retention import purge_user
from trainer.sync.tables import TABLES, Table, get_table
from trainer.sync.values import Unusable, from_client, same_on_wire

BAD_ID = "a record id is not valid (ids are 1-64 characters of A-Z a-z 0-9 _ -, owned by the caller)"
STALE = "the server has changed since your last pull; pull and push again"


@dataclass
class _TablePush:
    table: Table
    upserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    pushed_as_created: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    existing: dict[str, Row] = field(default_factory=dict)


@dataclass(frozen=True)
class PushRequest:
    user_id: str
    device_id: str | None
    last_pulled_at: int | None
    changes: Mapping[str, Mapping[str, Sequence[Any]]]


def parse(changes: Mapping[str, Mapping[str, Sequence[Any]]], max_records: int) -> list[_TablePush]:
    """Known tables in dependency order, ids checked; unknown tables and keys are ignored."""
    total = sum(len(v) for entry in changes.values() for v in entry.values() if isinstance(v, list))
    if total > max_records:
        raise PayloadTooLarge(
            f"push has {total} records, more than this server's limit of {max_records}; push in smaller batches",
            details={"records": total, "limit": max_records},
        )
    batches: list[_TablePush] = []
    for name, table in TABLES.items():
        entry = changes.get(name)
        if entry is None or not table.writable:
            continue  # read-only tables (daily_state): a device's copy is the server's, nothing to apply
        batch = _TablePush(table)
        for kind in ("created", "updated"):
            for record in entry.get(kind) or ():
                record_id = record.get("id") if isinstance(record, Mapping) else None
                _check_id(name, record_id)
                batch.upserts[record_id] = dict(record)
                if kind == "created":
                    batch.pushed_as_created.add(record_id)
        for record_id in entry.get("deleted") or ():
            _check_id(name, record_id)
            batch.deleted.append(record_id)
        batches.append(batch)
    return batches


def _check_id(table: str, record_id: Any) -> None:
    if not is_valid_id(record_id):
        raise InvalidInput(BAD_ID, details={"table": table})


async def apply_push(
    db: Database, request: PushRequest, *, max_records: int, retention_cutoff: int
) -> dict[str, list[str]]:
    """Apply the push; returns the ids rejected per table (usually none)."""
    batches = parse(request.changes, max_records)
    device = request.device_id or None
    async with db.transaction() as tx:
        stamp = await next_stamp(tx, request.user_id)
        state = await sync_state(tx, request.user_id)
        last = request.last_pulled_at
        if last is None or last <= 0 or last < state.purged_stamp or last >= stamp:
            raise Conflict(STALE, details={"reason": "lastPulledAt"})
        await _load_and_check(tx, request.user_id, device, last, batches)
        rejected: dict[str, list[str]] = {}
        for batch in batches:
            await _apply_upserts(tx, request.user_id, device, stamp, batch, rejected)
        for batch in reversed(batches):
            await rows.delete(tx, request.user_id, batch.table, batch.deleted, stamp, device)
        await purge_user(tx, request.user_id, retention_cutoff)
    return rejected


async def _load_and_check(
    tx: Transaction, user_id: str, device: str | None, last: int, batches: list[_TablePush]
) -> None:
    conflicts: dict[str, list[str]] = {}
    for batch in batches:
        ids = [*batch.upserts, *batch.deleted]
        if not ids:
            continue
        batch.existing = await rows.rows_by_id(tx, batch.table, ids)
        tombstones = await rows.tombstones_by_id(tx, batch.table, ids)
        if any(r["user_id"] != user_id for r in (*batch.existing.values(), *tombstones.values())):
            raise InvalidInput(BAD_ID, details={"table": batch.table.name})
        stale: list[str] = []
        for record_id in dict.fromkeys(ids):
            row, tomb = batch.existing.get(record_id), tombstones.get(record_id)
            own = device is not None
            if row is not None and row["updated_stamp"] > last and not (own and row["changed_by_device"] == device):
                stale.append(record_id)
            elif record_id in batch.upserts and tomb is not None and row is None:
                recreated = record_id in batch.pushed_as_created
                newer = tomb["deleted_stamp"] > last and not (own and tomb["changed_by_device"] == device)
                if not recreated or newer:
                    stale.append(record_id)
        if stale:
            conflicts[batch.table.name] = stale
    if conflicts:
        raise Conflict(STALE, details={"conflicts": conflicts})


def _prepare(table: Table, raw: dict[str, Any], base: Row | None) -> tuple[dict[str, Any], bool]:
    """The full writable row to store, and whether it differs from the device's copy."""
    row: dict[str, Any] = {"id": raw["id"]}
    adjusted = False
    for column in table.columns:
        name = column.name
        if not column.writable:
            if name in raw:
                stored = base[name] if base is not None else column.default
                adjusted = adjusted or not same_on_wire(column, raw[name], stored)
            continue
        if name in raw:
            try:
                value = from_client(column, raw[name])
            except Unusable:
                if base is None:
                    raise
                value = base[name]
            adjusted = adjusted or not same_on_wire(column, raw[name], value)
        elif base is not None:
            value = base[name]
        elif column.required:
            raise Unusable(f"{name} is missing")
        else:
            value, adjusted = column.default, True
        row[name] = value
    return row, adjusted


async def _apply_upserts(
    tx: Transaction, user_id: str, device: str | None, stamp: int, batch: _TablePush, rejected: dict[str, list[str]]
) -> None:
    prepared: list[tuple[dict[str, Any], bool]] = []
    for record_id, raw in batch.upserts.items():
        try:
            prepared.append(_prepare(batch.table, raw, batch.existing.get(record_id)))
        except Unusable:
            rejected.setdefault(batch.table.name, []).append(record_id)
    orphans: list[str] = []
    for column in batch.table.references:
        assert column.references is not None
        targets = {row[column.name] for row, _ in prepared if row[column.name] is not None}
        present = await rows.owned_ids(tx, user_id, get_table(column.references), targets) if targets else set()
        kept: list[tuple[dict[str, Any], bool]] = []
        for row, adjusted in prepared:
            if row[column.name] is None or row[column.name] in present:
                kept.append((row, adjusted))
            elif column.on_parent_delete == "cascade":
                orphans.append(row["id"])
            else:
                row[column.name] = None
                kept.append((row, True))
        prepared = kept
    await rows.upsert_many(
        tx, user_id, batch.table, [(row, None if adjusted else device) for row, adjusted in prepared], stamp, device
    )
    if orphans:
        gone = await rows.delete(tx, user_id, batch.table, orphans, stamp, None)
        await rows.tombstone_unknown(tx, user_id, batch.table, [i for i in orphans if i not in gone], stamp)
