"""The one-file binary, end to end (packaging/smoke_test.py): only with TRAINER_TEST_BINARY=1.

Building the binary takes minutes, so ordinary test runs skip this. To run it:

    packaging/build-binary.sh && TRAINER_TEST_BINARY=1 pytest tests/test_binary.py

TRAINER_BINARY names another binary than dist/trainer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("TRAINER_BINARY", ROOT / "dist" / "trainer"))

pytestmark = [
    pytest.mark.binary,
    pytest.mark.skipif(
        os.environ.get("TRAINER_TEST_BINARY") != "1", reason="set TRAINER_TEST_BINARY=1 to test the binary"
    ),
]


def test_binary_runs_every_operator_command_with_the_bundled_plugins() -> None:
    assert BINARY.is_file(), f"no binary at {BINARY}: run packaging/build-binary.sh first"
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "smoke_test.py"), "--binary", str(BINARY)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("version", "migrate", "doctor", "import", "serve", "worker", "backfill"):
        assert any(line.startswith(stage) for line in done.stdout.splitlines()), f"stage {stage} did not report"
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("figures ")]
    figures = json.loads(line.removeprefix("figures "))
    assert figures["idle_rss_mib"] < 300  # an idle server, embedded worker included
    assert figures["webhook_to_stored_s"] < 30
