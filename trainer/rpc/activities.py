"""activities.*: what the app fetches on demand instead of syncing: an activity's sample streams.

Streams are large (a 4 h ride is ~14,000 samples per channel) and only needed when a chart is
opened, so they never travel through sync. Only the owner can read them; another user's id is
NOT_FOUND, exactly like an id that does not exist.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from trainer.analysis.streams_codec import CHANNEL_IDS, SCALE_EXPONENTS
from trainer.errors import InvalidInput
from trainer.normalized import STREAM_CHANNELS
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.store import activities

router = Router("activities")

CHANNELS = tuple(name for name in CHANNEL_IDS if name != "time_s")


class StreamsQuery(Input):
    id: str = Field(min_length=1, max_length=64)
    types: list[str] | None = Field(
        None, max_length=len(CHANNELS), description=f"Channels to return (default: all); any of {', '.join(CHANNELS)}"
    )


class ActivityStreams(Output):
    id: str
    sample_count: int
    time: list[float] = Field(description="Seconds since the activity start")
    channels: dict[str, list[float | None]] = Field(description="Recorded channels by name; null = no sample")
    units: dict[str, str]


def _values(array: np.ndarray, name: str) -> list[float | None]:
    """Rounded to the stored resolution (no 0.30000000000000004), NaN as null."""
    rounded = np.round(array, max(-SCALE_EXPONENTS[name], 0))
    return [None if v != v else v for v in rounded.tolist()]


@router.query("getStreams")
async def get_streams(ctx: Context, input: StreamsQuery) -> ActivityStreams:
    """Sample streams of one of the caller's activities (empty when it was recorded without samples)."""
    unknown = sorted(set(input.types or ()) - set(CHANNELS))
    if unknown:
        raise InvalidInput(f"types: unknown stream channel(s) {', '.join(unknown)}")
    streams = await activities.get_streams(ctx.db, ctx.user.id, input.id, input.types)
    if streams is None:
        return ActivityStreams(id=input.id, sample_count=0, time=[], channels={}, units={})
    channels = {name: _values(values, name) for name, values in streams.channels().items()}
    return ActivityStreams(
        id=input.id,
        sample_count=len(streams),
        time=_values(np.asarray(streams.time_s), "time_s"),  # type: ignore[arg-type]
        channels=channels,
        units={name: STREAM_CHANNELS[name].unit for name in channels},
    )
