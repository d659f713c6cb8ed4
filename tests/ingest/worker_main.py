"""Run the real `trainer` CLI with the test plugin installed, for tests that need a separate process.

A third party installs a plugin by declaring an entry point in its distribution; the test plugin has
no distribution, so this launcher adds its entry point to what discovery sees and then hands over to
the unmodified `trainer` command line: `python -m tests.ingest.worker_main worker --workers 2`.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import trainer.plugins

_installed = trainer.plugins.entry_points


def with_test_plugin(**selection: Any) -> list[EntryPoint]:
    """`importlib.metadata.entry_points`, plus the test plugin's entry point in trainer's group."""
    found = list(_installed(**selection))
    if selection.get("group") == trainer.plugins.ENTRY_POINT_GROUP:
        found.append(EntryPoint("testsrc", "tests.ingest.testplugin:TestSource", trainer.plugins.ENTRY_POINT_GROUP))
    return found


if __name__ == "__main__":
    from trainer_cli.main import main

    trainer.plugins.entry_points = with_test_plugin  # type: ignore[assignment]
    main()
