"""The event loop trainer's processes run on: uvloop where it is installed, else asyncio's own.

The server and the worker spend much of their CPU in the loop itself: callbacks, socket reads and
writes, results handed back from database threads. uvloop does that in C (libuv); measured with
`bench/ingest.py`, it saves about 8 % of the CPU per webhook and about 18 % per processed event.
`event_loop = "asyncio"` runs on the standard loop (to debug, or to rule the loop out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from trainer.errors import ConfigError

T = TypeVar("T")
LoopChoice = Literal["auto", "uvloop", "asyncio"]


def loop_factory(choice: LoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """How to make a new event loop for `choice`; "uvloop" when it is not installed is a config error."""
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("event_loop = uvloop, but uvloop is not installed (pip install uvloop)") from None
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T], choice: LoopChoice = "auto") -> T:
    """asyncio.run on the chosen loop."""
    try:
        factory = loop_factory(choice)
    except ConfigError:
        coro.close()  # never started: say so quietly instead of warning that it was never awaited
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
