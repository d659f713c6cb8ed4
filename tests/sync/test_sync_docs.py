"""docs/sync.md names every synced table and column, and says which are read-only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainer.sync.tables import TABLES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sync.md").read_text(encoding="utf-8")


def _row(table: str) -> str:
    match = re.search(rf"^\| `{table}` \|(.+)\|$", DOC, flags=re.MULTILINE)
    assert match, f"docs/sync.md has no row for table {table}"
    return match[1]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_column_is_documented_with_its_access(table: str) -> None:
    row = _row(table)
    for column in TABLES[table].columns:
        assert re.search(rf"`{column.name}\??`", row), f"{table}.{column.name} is not in docs/sync.md"
    for column in TABLES[table].columns:
        if not column.writable:
            # the column, possibly followed by others of the same type, ends in a "(... ro)" note
            after = row[row.index(f"`{column.name}") :]
            note = after[after.index("(") : after.index(")") + 1]
            assert "ro" in note, f"{table}.{column.name} is read-only but docs/sync.md does not say so"
