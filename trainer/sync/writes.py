"""Server-side writes to the synced tables: the one way for trainer's own code (ingest pipeline,
analysis engine, admin tools) to change a user's activities, daily metrics, plans or scheduled
workouts so that the change reaches every device through the next `sync.pullChanges`.

    async with db.transaction() as tx:
        stamp = await next_stamp(tx, user_id)          # optional: one stamp for a batch of writes
        activity_id = await upsert_server_row(tx, user_id, "activities", {
            "source": "garmin", "external_id": "123", "start_time": 1_700_000_000_000, "duration_s": 3600.0,
        }, stamp=stamp)
        await upsert_server_row(tx, user_id, "activities", {"id": activity_id, "trimp": 87.5}, stamp=stamp)
        await delete_server_row(tx, user_id, "training_plans", plan_id, stamp=stamp)

Rules (why they matter for sync):
- Always inside `db.transaction()`: the stamp is taken under the user's lock, so stamps follow
  commit order and a pull can never miss a write that commits after its watermark.
- `row` is a patch: only the columns given change on an existing row; a new row gets the defaults
  of the others. Any client-visible column (including the computed ones a device cannot write, such
  as trimp, analysis, current_phase, adaptation_reason) and the server-only `external_id` may be set.
  Values are checked strictly (`ValueError` on a wrong type, NaN, a bad day or id): clean them first.
- No `id` -> a new UUID; for activities with `external_id` (and `source`), the existing activity
  with that identity is updated instead, so re-ingesting is idempotent.
- A server write clears `changed_by_device`, so every device, including the one that last edited the
  row, pulls it again. It removes a tombstone of the same id (the row exists again).
- Deleting tombstones the row and its children (a plan's scheduled workouts) and clears references
  to it (a workout's completed_activity_id), exactly as a deletion pushed by a device does.
- An id owned by another user, or a reference to another user's (or a missing) row, raises NotFound.
"""

from __future__ import annotations

from typing import Any

from trainer.db import Transaction
from trainer.errors import NotFound
from trainer.ids import is_valid_id, new_id
from trainer.store.stamps import next_stamp
from trainer.sync import rows
from trainer.sync.tables import SERVER_ONLY_COLUMNS, Table, get_table
from trainer.sync.values import from_server


async def upsert_server_row(
    tx: Transaction, user_id: str, table: str, row: dict[str, Any], *, stamp: int | None = None
) -> str:
    """Create or patch one row of `table` for `user_id`; returns its id. See the module docstring."""
    spec = get_table(table)
    values = _checked(spec, row)
    row_id = row.get("id")
    if row_id is None:
        row_id = await _existing_by_identity(tx, user_id, spec, values) or new_id()
    elif not is_valid_id(row_id):
        raise ValueError(f"{row_id!r} is not a valid row id")
    await _check_references(tx, user_id, spec, values)
    missing = [c.name for c in spec.columns if c.required and c.name not in values]
    if missing and not await rows.owned_ids(tx, user_id, spec, [row_id]):
        raise ValueError(f"a new {table} row needs {', '.join(missing)}")
    stamp = stamp if stamp is not None else await next_stamp(tx, user_id)
    if not await rows.upsert(tx, user_id, spec, {"id": row_id, **values}, stamp, None):
        raise NotFound(f"no {table} row {row_id} for this user")
    return row_id


async def insert_server_row(tx: Transaction, user_id: str, table: str, row: dict[str, Any], *, stamp: int) -> str:
    """Create a row under a fresh id (any `id` in `row` is refused); returns the id. One INSERT,
    where `upsert_server_row` first tries an UPDATE and clears tombstones: for a bulk of new rows
    (every webhook's activity) those statements can only find nothing."""
    if "id" in row:
        raise ValueError("insert_server_row makes its own id")
    spec = get_table(table)
    values = _checked(spec, row)
    await _check_references(tx, user_id, spec, values)
    missing = [c.name for c in spec.columns if c.required and c.name not in values]
    if missing:
        raise ValueError(f"a new {table} row needs {', '.join(missing)}")
    row_id = new_id()
    await rows.insert_new(tx, user_id, spec, {"id": row_id, **values}, stamp, None)
    return row_id


async def patch_server_rows(
    tx: Transaction, user_id: str, table: str, patches: list[dict[str, Any]], *, stamp: int
) -> int:
    """Patch many existing rows of the user at once with the same columns (e.g. recomputed loads);
    returns how many rows changed. One statement for the batch: a bulk re-analysis must not pay
    several round trips per row. Columns must not be references (use upsert_server_row for those);
    ids the user does not own are not touched."""
    if not patches:
        return 0
    spec = get_table(table)
    checked = [(str(p["id"]), _checked(spec, p)) for p in patches]
    names = list(checked[0][1])
    if any(list(values) != names for _, values in checked) or any(spec.by_name[n].references for n in names):
        raise ValueError("patch_server_rows needs the same non-reference columns in every patch")
    assignments = ", ".join(f"{name} = ${i + 1}" for i, name in enumerate(names))
    n = len(names)
    sql = (
        f"UPDATE {spec.name} SET {assignments}, updated_stamp = ${n + 1}, changed_by_device = NULL"
        f" WHERE id = ${n + 2} AND user_id = ${n + 3}"
    )
    await tx.executemany(sql, [[*values.values(), stamp, row_id, user_id] for row_id, values in checked])
    return len(checked)


async def delete_server_row(
    tx: Transaction, user_id: str, table: str, row_id: str, *, stamp: int | None = None
) -> bool:
    """Delete one row (with its children) and tombstone it; False when the user has no such row."""
    spec = get_table(table)
    stamp = stamp if stamp is not None else await next_stamp(tx, user_id)
    return bool(await rows.delete(tx, user_id, spec, [row_id], stamp, None))


def _checked(spec: Table, row: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    server_only = SERVER_ONLY_COLUMNS.get(spec.name, ())
    for name, value in row.items():
        if name == "id":
            continue
        if name in server_only:
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{spec.name}.{name} must be a string")
            values[name] = value
            continue
        column = spec.by_name.get(name)
        if column is None:
            raise ValueError(f"{spec.name} has no column {name!r} that the server may write")
        values[name] = from_server(column, value)
    return values


async def _existing_by_identity(tx: Transaction, user_id: str, spec: Table, values: dict[str, Any]) -> str | None:
    """Activities are identified by (source, external_id) when the caller has no id."""
    if spec.name != "activities" or values.get("external_id") is None:
        return None
    return await tx.fetchval(
        "SELECT id FROM activities WHERE user_id = $1 AND source = $2 AND external_id = $3",
        user_id,
        values.get("source", "app"),
        values["external_id"],
    )


async def _check_references(tx: Transaction, user_id: str, spec: Table, values: dict[str, Any]) -> None:
    for column in spec.references:
        target = values.get(column.name)
        if target is None:
            continue
        assert column.references is not None
        if not await rows.owned_ids(tx, user_id, get_table(column.references), [target]):
            raise NotFound(f"{spec.name}.{column.name}: no {column.references} row {target} for this user")
