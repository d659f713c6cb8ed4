"""POST /api/v1/activities/upload: the app sends activity files (FIT, GPX, TCX, gzipped or not).

A plain multipart/form-data endpoint rather than a tRPC procedure, because files are binary and
can be large: each part named "file" is streamed to a temporary file under `upload_max_bytes` (the
JSON body limit does not apply), then goes through the same import as `trainer import`. The answer
lists each file's outcome; the activities reach the app through sync as usual.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from trainer.errors import InvalidInput, PayloadTooLarge, Unauthenticated
from trainer.imports import FileOutcome, import_file
from trainer.plugins import FileImporter
from trainer.services import SERVICES

UPLOAD_PATH = "/api/v1/activities/upload"
MAX_FILES = 20
_CHUNK = 256 * 1024
_MULTIPART_OVERHEAD = 64 * 1024


def setup_routes(app: web.Application) -> None:
    app.router.add_post(UPLOAD_PATH, upload)


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing access token")
    return token.strip()


def _display_name(filename: str | None, index: int) -> str:
    """The client's file name, reduced to something safe to echo back and log."""
    base = re.split(r"[\\/]", unquote(filename or ""))[-1]
    cleaned = re.sub(r"[^\w.\- ]", "_", base)[:100].strip()
    return cleaned or f"file-{index}"


def _outcome_json(outcome: FileOutcome) -> dict[str, object]:
    return {
        "name": outcome.name,
        "status": outcome.status,
        "activityIds": outcome.activity_ids,
        "reason": outcome.reason or None,
    }


async def upload(request: web.Request) -> web.Response:
    """Import the uploaded files for the caller; 201 when something new was imported, else 200.

    All files refused: 400 with the first file's one-line reason (and every file's outcome).
    """
    services = request.app[SERVICES]
    user = await services.auth.authenticate(_bearer(request))
    limit = services.settings.upload_max_bytes
    if request.content_length is not None and request.content_length > limit * MAX_FILES + _MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"upload is larger than {MAX_FILES} files of {limit} bytes")
    if not request.content_type.startswith("multipart/"):
        raise InvalidInput("send the file as multipart/form-data in a field named 'file'")
    importers = services.plugins.with_capability(FileImporter)
    reader = await request.multipart()
    outcomes: list[FileOutcome] = []
    with tempfile.TemporaryDirectory(prefix="trainer-upload-") as folder:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            if len(outcomes) >= MAX_FILES:
                raise InvalidInput(f"at most {MAX_FILES} files per upload")
            name = _display_name(part.filename, len(outcomes) + 1)
            path = Path(folder) / f"{len(outcomes)}.upload"
            await _save_part(part, path, limit, name)
            outcomes.append(await import_file(services.db, importers, user.id, path, display_name=name))
            path.unlink(missing_ok=True)
    if not outcomes:
        raise InvalidInput("no file in the upload (multipart field 'file')")
    files = [_outcome_json(o) for o in outcomes]
    if all(o.status == "refused" for o in outcomes):
        first = outcomes[0]
        body = {"error": {"code": "BAD_REQUEST", "message": f"{first.name}: {first.reason}", "files": files}}
        return web.json_response(body, status=400)
    ids = list(dict.fromkeys(i for o in outcomes for i in o.activity_ids))
    status = 201 if any(o.status == "imported" for o in outcomes) else 200
    return web.json_response({"activityIds": ids, "files": files}, status=status)


async def _save_part(part: BodyPartReader, path: Path, limit: int, name: str) -> None:
    size = 0
    with path.open("wb") as out:
        while chunk := await part.read_chunk(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"{name}: larger than the {limit // (1024 * 1024)} MB upload limit")
            out.write(chunk)
