"""The event loop choice (trainer/loops.py): uvloop when installed, asyncio on request, a clear
error when uvloop is required but missing."""

from __future__ import annotations

import asyncio
import sys

import pytest

from trainer import loops
from trainer.errors import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert loops.run(_loop_module()).startswith("uvloop")


def test_asyncio_runs_on_the_standard_loop() -> None:
    assert loops.run(_loop_module(), "asyncio").startswith("asyncio")


def test_auto_falls_back_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert loops.run(_loop_module()).startswith("asyncio")


def test_required_uvloop_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loops.run(_loop_module(), "uvloop")
