"""The one error type a file import raises for a file it cannot (or will not) import."""

from __future__ import annotations

__all__ = ["ImportFileError"]


class ImportFileError(Exception):
    """A file could not be imported; ``str(exc)`` is a one-line reason meant for the athlete.

    Raised for corrupt files, files that are not recorded activities (workouts, monitoring
    data, routes), unsupported formats and files over the size limits. Callers show the reason
    and move on; a bad upload must never surface as a traceback.
    """

    def __init__(self, reason: str) -> None:
        reason = " ".join(reason.split())  # guarantee a single line
        super().__init__(reason)
        self.reason = reason
