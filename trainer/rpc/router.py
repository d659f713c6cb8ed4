"""Declaring tRPC procedures: each one once, with its input and output types taken from its signature.

    router = Router("user")

    @router.query("getProfile")
    async def get_profile(ctx: Context) -> Profile: ...

    @router.mutation("updateSettings")
    async def update_settings(ctx: Context, input: SettingsPatch) -> Profile: ...

The same declarations drive validation, serialization and the TypeScript types of `trainer codegen`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic.alias_generators import to_camel

from trainer.rpc.streaming import Streamed

Kind = Literal["query", "mutation"]
Handler = Callable[..., Awaitable[Any]]


class Input(BaseModel):
    """Base of procedure inputs: camelCase on the wire, unknown keys an error (not silently dropped)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class Output(BaseModel):
    """Base of procedure outputs: camelCase on the wire, as TypeScript code expects."""

    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel)


@dataclass(frozen=True)
class Procedure:
    path: str
    kind: Kind
    handler: Handler
    input_type: Any | None  # None: the procedure takes no input
    output_type: Any | None  # None: the procedure returns nothing (tRPC `undefined`)
    public: bool
    max_body_bytes: int | str | None  # bytes, or the name of the setting that holds them
    input_adapter: TypeAdapter | None
    output_adapter: TypeAdapter | None
    summary: str
    cleans_own_input: bool = False  # the handler sanitizes text itself (NUL included): the wire must not refuse it


class Router:
    """A named group of procedures (`auth`, `user`, `sync` ...); its paths are `<name>.<procedure>`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procedures: dict[str, Procedure] = {}

    def query(self, name: str, *, public: bool = False) -> Callable[[Handler], Handler]:
        return self._register(name, "query", public=public, max_body_bytes=None)

    def mutation(
        self,
        name: str,
        *,
        public: bool = False,
        max_body_bytes: int | str | None = None,
        cleans_own_input: bool = False,
    ) -> Callable[[Handler], Handler]:
        return self._register(
            name, "mutation", public=public, max_body_bytes=max_body_bytes, cleans_own_input=cleans_own_input
        )

    def _register(
        self, name: str, kind: Kind, *, public: bool, max_body_bytes: int | str | None, cleans_own_input: bool = False
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            hints = get_type_hints(handler)
            params = list(inspect.signature(handler).parameters)
            input_type = hints.get("input") if "input" in params else None
            output_type = hints.get("return")
            if output_type is type(None):
                output_type = None
            if get_origin(output_type) is Streamed:  # written incrementally; typed as its item
                (output_type,) = get_args(output_type)
            path = f"{self.name}.{name}"
            if path in self.procedures:
                raise ValueError(f"procedure {path} declared twice")
            self.procedures[path] = Procedure(
                path=path,
                kind=kind,
                handler=handler,
                input_type=input_type,
                output_type=output_type,
                public=public,
                max_body_bytes=max_body_bytes,
                cleans_own_input=cleans_own_input,
                input_adapter=TypeAdapter(input_type) if input_type is not None else None,
                output_adapter=TypeAdapter(output_type) if output_type is not None else None,
                summary=inspect.getdoc(handler) or "",
            )
            return handler

        return decorate


def merge(*routers: Router) -> dict[str, Procedure]:
    """All procedures of the app by path; a path declared twice is a programming error."""
    procedures: dict[str, Procedure] = {}
    for router in routers:
        for path, procedure in router.procedures.items():
            if path in procedures:
                raise ValueError(f"procedure {path} declared twice")
            procedures[path] = procedure
    return procedures
