"""tRPC over HTTP: requests, batching, envelopes and status codes as tRPC's clients (v10 and v11) expect.

Every response under the prefix is a tRPC JSON envelope, whatever went wrong: the clients always
parse the body, so a plain-text error would surface in the app as a JSON SyntaxError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from trainer.errors import InvalidInput, TrainerError
from trainer.rpc.context import Context
from trainer.rpc.errors import RpcError, code_for, envelope, http_status
from trainer.rpc.router import Procedure
from trainer.rpc.streaming import Streamed
from trainer.services import SERVICES

log = logging.getLogger("trainer.rpc")

PROCEDURES = web.AppKey("procedures", dict)
JSON_HEADERS = {"Content-Type": "application/json"}
_UNDEFINED: Any = object()


class _Result:
    """One call's outcome: the encoded envelope bytes and its HTTP status.

    A streamed output (streaming.py) has only the envelope's head in `body`; `rest` yields the
    remaining chunks, envelope tail included.
    """

    __slots__ = ("body", "rest", "status")

    def __init__(self, body: bytes, status: int, rest: AsyncIterator[bytes] | None = None) -> None:
        self.body = body
        self.status = status
        self.rest = rest

    async def complete(self) -> _Result:
        """The whole envelope in `body` (batches cannot interleave a stream with other results)."""
        if self.rest is not None:
            self.body += b"".join([chunk async for chunk in self.rest])
            self.rest = None
        return self


def _error_result(code: str, message: str, path: str | None, extra: dict | None = None) -> _Result:
    return _Result(json.dumps(envelope(code, message, path, extra)).encode(), http_status(code))


async def handle(request: web.Request) -> web.StreamResponse:
    """The one aiohttp handler behind `/trpc/{path}`."""
    if request.method == "HEAD":
        return web.Response(status=204)
    procedures: dict[str, Procedure] = request.app[PROCEDURES]
    is_batch = request.query.get("batch") in ("1", "true")
    raw_path = request.match_info.get("path", "")
    paths = raw_path.split(",") if is_batch else [raw_path]
    try:
        if request.method not in ("GET", "POST"):
            raise RpcError("METHOD_NOT_SUPPORTED", f"method {request.method} is not supported")
        inputs = await _read_inputs(request, paths, is_batch, procedures)
    except RpcError as exc:
        result = _error_result(exc.code, exc.message, None if is_batch else raw_path)
        return web.Response(body=result.body, status=result.status, headers=JSON_HEADERS)

    ctx = Context(request, request.app[SERVICES])
    results = [await _call(ctx, procedures.get(path), path, inputs[i], request.method) for i, path in enumerate(paths)]
    if not is_batch:
        if results[0].rest is not None:
            return await _stream(request, results[0])
        return web.Response(body=results[0].body, status=results[0].status, headers=JSON_HEADERS)
    results = [await r.complete() for r in results]
    if request.headers.get("trpc-accept") == "application/jsonl":
        return _jsonl(results)
    statuses = {r.status for r in results}
    status = statuses.pop() if len(statuses) == 1 else 207
    return web.Response(body=b"[" + b",".join(r.body for r in results) + b"]", status=status, headers=JSON_HEADERS)


async def _stream(request: web.Request, result: _Result) -> web.StreamResponse:
    """Write a streamed output as it is produced; a failure midway aborts the connection, so the
    client sees a truncated body (never a valid-looking partial result)."""
    assert result.rest is not None
    response = web.StreamResponse(status=result.status, headers=JSON_HEADERS)
    await response.prepare(request)
    try:
        await response.write(result.body)
        async for chunk in result.rest:
            await response.write(chunk)
        await response.write_eof()
    except (ConnectionError, OSError):
        log.info("client went away during a streamed response to %s", request.path)
    except Exception:
        log.exception("streamed response to %s failed midway; aborting it", request.path)
        if request.transport is not None:
            request.transport.abort()
    finally:
        await _aclose(result.rest)
    return response


async def _tail(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
        yield b"}}"
    finally:
        await _aclose(chunks)


async def _aclose(chunks: AsyncIterator[bytes]) -> None:
    """Close an async generator now, so what it holds open (a database snapshot) is released."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _jsonl(results: list[_Result]) -> web.Response:
    """httpBatchStreamLink: one JSONL head line holding every result inline, then the end."""
    parts = [b'"%d":[[' % i + r.body + b"]]" for i, r in enumerate(results)]
    body = b"{" + b",".join(parts) + b"}\n"
    return web.Response(body=body, status=200, headers={"Content-Type": "application/json", "Vary": "trpc-accept"})


async def _read_inputs(
    request: web.Request, paths: list[str], is_batch: bool, procedures: dict[str, Procedure]
) -> list[Any]:
    if request.method == "GET":
        raw = request.query.get("input")
        text: str | None = raw
    else:
        settings = request.app[SERVICES].settings
        limit = (
            max(
                (_body_limit(p, settings) for p in (procedures.get(x) for x in paths) if p is not None),
                default=0,
            )
            or settings.max_body_bytes
        )
        body = await _read_body(request, limit)
        try:
            text = body.decode("utf-8", errors="strict") if body else None
        except UnicodeDecodeError:
            raise RpcError("PARSE_ERROR", "request body is not valid UTF-8") from None
    if text is None or text == "":
        return [_UNDEFINED] * len(paths)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise RpcError("PARSE_ERROR", f"input is not valid JSON: {exc}") from None
    except RecursionError:
        # Only a few KB of brackets reach this (bodies are size-limited): answer it, don't 500.
        raise RpcError("PARSE_ERROR", "input is nested too deeply") from None
    cleaned_by_handler = all(p is not None and p.cleans_own_input for p in (procedures.get(x) for x in paths))
    if "\\u0000" in text and not cleaned_by_handler and _has_nul(value):  # cheap scan first
        # PostgreSQL text and jsonb cannot hold U+0000: refuse it here for both backends, not 500 on one.
        raise RpcError("BAD_REQUEST", "text in the input must not contain the NUL character (\\u0000)")
    if not is_batch:
        return [value]
    if not isinstance(value, dict):
        raise RpcError("BAD_REQUEST", 'batch input must be an object keyed by call index ("0", "1", ...)')
    return [value.get(str(i), _UNDEFINED) for i in range(len(paths))]


def _has_nul(value: Any) -> bool:
    """Whether any string (key or value) holds U+0000; iterative, as inputs may nest deeply."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _body_limit(procedure: Procedure, settings: Any) -> int:
    """A procedure's own body limit: a number, or the name of the setting that holds it."""
    limit = procedure.max_body_bytes
    return int(getattr(settings, limit)) if isinstance(limit, str) else (limit or 0)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise RpcError("PAYLOAD_TOO_LARGE", f"request body is larger than {limit} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RpcError("PAYLOAD_TOO_LARGE", f"request body is larger than {limit} bytes") from None
    if len(body) > limit:
        raise RpcError("PAYLOAD_TOO_LARGE", f"request body is larger than {limit} bytes")
    return body


async def _call(ctx: Context, procedure: Procedure | None, path: str, raw: Any, method: str) -> _Result:
    if procedure is None:
        return _error_result("NOT_FOUND", f'No procedure found on path "{path}"', path)
    if (procedure.kind == "query") != (method == "GET"):
        expected = "GET" if procedure.kind == "query" else "POST"
        return _error_result(
            "METHOD_NOT_SUPPORTED", f"{procedure.kind} {path} must be called with {expected}, not {method}", path
        )
    try:
        if not procedure.public:
            await ctx.authenticate()
        args: list[Any] = [ctx]
        if procedure.input_adapter is not None:
            args.append(_validate(procedure, raw))
        output = await procedure.handler(*args)
        if isinstance(output, Streamed):
            chunks = aiter(output.chunks)
            try:
                first = await anext(chunks, b"")
            except BaseException:
                await _aclose(chunks)
                raise
            return _Result(b'{"result":{"data":' + first, 200, _tail(chunks))
        if procedure.output_adapter is None:
            return _Result(b'{"result":{}}', 200)
        return _Result(b'{"result":{"data":' + procedure.output_adapter.dump_json(output, by_alias=True) + b"}}", 200)
    except TrainerError as exc:
        code = code_for(exc)
        extra = dict(exc.details)
        if code == "TOO_MANY_REQUESTS":
            extra["retryAfter"] = getattr(exc, "retry_after", None)
        return _error_result(code, exc.message, path, extra)
    except Exception:
        log.exception("unhandled error in procedure %s", path)
        return _error_result("INTERNAL_SERVER_ERROR", "Internal server error", path)


def _validate(procedure: Procedure, raw: Any) -> Any:
    assert procedure.input_adapter is not None
    if raw is _UNDEFINED:
        raw = None
    try:
        return procedure.input_adapter.validate_python(raw)
    except ValidationError as exc:
        issues = [
            {"path": list(e["loc"]), "message": e["msg"], "code": e["type"]} for e in exc.errors(include_url=False)
        ]
        first = issues[0]
        where = ".".join(str(p) for p in first["path"]) or "input"
        message = "input is required" if raw is None and not first["path"] else f"{where}: {first['message']}"
        raise InvalidInput(message, details={"issues": issues}) from None
