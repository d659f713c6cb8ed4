"""The one mapping from trainer's errors to tRPC error codes and HTTP statuses."""

from __future__ import annotations

from dataclasses import dataclass

from trainer import errors

# data.code -> (JSON-RPC code, HTTP status), as tRPC's clients expect them.
TRPC_CODES: dict[str, tuple[int, int]] = {
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "TIMEOUT": (-32008, 408),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "UNPROCESSABLE_CONTENT": (-32022, 422),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "NOT_IMPLEMENTED": (-32603, 501),
    "BAD_GATEWAY": (-32603, 502),
    "SERVICE_UNAVAILABLE": (-32603, 503),
    "GATEWAY_TIMEOUT": (-32603, 504),
}

# Most specific class first: PayloadTooLarge is an InvalidInput.
_BY_CLASS: list[tuple[type[errors.TrainerError], str]] = [
    (errors.PayloadTooLarge, "PAYLOAD_TOO_LARGE"),
    (errors.InvalidInput, "BAD_REQUEST"),
    (errors.Unauthenticated, "UNAUTHORIZED"),
    (errors.PermissionDenied, "FORBIDDEN"),
    (errors.NotFound, "NOT_FOUND"),
    (errors.Conflict, "CONFLICT"),
    (errors.RateLimited, "TOO_MANY_REQUESTS"),
    (errors.Unavailable, "SERVICE_UNAVAILABLE"),
]


@dataclass
class RpcError(Exception):
    """A protocol-level failure (bad JSON, unknown path, wrong method) before any procedure runs."""

    code: str
    message: str


def code_for(exc: errors.TrainerError) -> str:
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    return "INTERNAL_SERVER_ERROR"


def http_status(code: str) -> int:
    return TRPC_CODES[code][1]


def envelope(code: str, message: str, path: str | None, extra: dict | None = None) -> dict:
    json_code, status = TRPC_CODES[code]
    data: dict = {"code": code, "httpStatus": status}
    if path is not None:
        data["path"] = path
    if extra:
        data.update(extra)
    return {"error": {"message": message, "code": json_code, "data": data}}
