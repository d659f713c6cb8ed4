"""Import recorded activities from FIT, GPX and TCX files (plain or gzipped)."""

from .errors import ImportFileError
from .parse import parse_activity_bytes, parse_activity_file

__all__ = ["ImportFileError", "parse_activity_bytes", "parse_activity_file"]
