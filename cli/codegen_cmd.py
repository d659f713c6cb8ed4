"""`trainer codegen ts OUTDIR`: TypeScript types of the API and the app's WatermelonDB schema."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from trainer_cli.common import console, fail

from trainer.codegen import write_typescript


class Target(StrEnum):
    ts = "ts"


def codegen(
    target: Annotated[Target, typer.Argument(help="What to generate: `ts` (TypeScript).")],
    outdir: Annotated[Path, typer.Argument(help="Folder to write into (created if missing; files are replaced).")],
) -> None:
    """Generate router.ts (the tRPC AppRouter type), schema.ts and migrations.ts (WatermelonDB) for the app.

    Needs no configuration or database: everything comes from the server's declarations.
    """
    try:
        written = write_typescript(outdir)
    except OSError as exc:
        fail(f"cannot write to {outdir}: {exc.strerror}")
    for path in written:
        console.print(f"wrote {path}", highlight=False)
