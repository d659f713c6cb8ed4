"""Outputs written to the response while they are produced, for results too large to build in memory.

A procedure declares `-> Streamed[PullResult]` and returns `Streamed(chunks)`, where `chunks` is an
async iterator of UTF-8 pieces whose concatenation is the JSON of one `PullResult`. The declared
type still drives codegen; the wire layer (wire.py) writes `{"result":{"data":` + chunks + `}}`.

The first chunk is awaited before any byte is sent, so an error raised up to it (bad input, no
database) is still a normal tRPC error envelope; put every check before the first `yield`. An error
after it can only abort the response: the client then sees a truncated body and fails its call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Streamed(Generic[T]):
    __slots__ = ("chunks",)

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
