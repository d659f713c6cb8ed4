"""user.exportData / user.deleteAccount / user.checkDeletion: the user's data rights from the app.

The work is in trainer/data_rights.py; this module is the tRPC edge. What the app must do around
a deletion is in docs/data-rights.md.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from pydantic import Field

from trainer import data_rights
from trainer.errors import Unauthenticated
from trainer.rpc.context import Context
from trainer.rpc.router import Input, Output, Router
from trainer.rpc.streaming import Streamed
from trainer.store import users

router = Router("user")

# Exports are CPU and disk heavy: a few at a time per process is plenty for an appliance.
_EXPORTS = asyncio.Semaphore(2)


class ExportResult(Output):
    file_name: str
    content_type: str = "application/zip"
    size_bytes: int
    zip_base64: str = Field(description="The zip file, base64-encoded: manifest.json, tables/*.json, streams/*")


class DeleteAccountInput(Input):
    password: str = Field(max_length=1024, description="The account's password, to confirm")


class DeleteAccountResult(Output):
    deleted: bool
    vendors_deauthorized: list[str]
    vendors_failed: list[str] = Field(description="Services to revoke access at by hand (they could not be told)")
    wipe_local_data: bool = Field(True, description="Delete the local database and return to sign-in")


class CheckDeletionInput(Input):
    refresh_token: str = Field(max_length=200)


class CheckDeletionResult(Output):
    deleted: bool = Field(description="True: the account was deleted; wipe the local database")
    deleted_at: int | None = Field(None, description="Milliseconds since the epoch")


@router.mutation("exportData")
async def export_data(ctx: Context) -> Streamed[ExportResult]:
    """Everything the server holds about the caller, as a zip (streamed as base64 inside the result)."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by the stream once sent
    try:
        async with _EXPORTS:
            manifest = await data_rights.export_user(ctx.db, ctx.user.id, spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    day = manifest.generated_at[:10]
    head = {"fileName": f"trainer-export-{day}.zip", "contentType": "application/zip", "sizeBytes": size}
    return Streamed(_result_json(head, spool))


async def _result_json(head: dict, spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        yield json.dumps(head)[:-1].encode() + b',"zipBase64":"'
        async for piece in data_rights.chunks_of(spool):
            yield piece
        yield b'"}'
    finally:
        spool.close()


@router.mutation("deleteAccount")
async def delete_account(ctx: Context, input: DeleteAccountInput) -> DeleteAccountResult:
    """Delete the account and everything in it, now and for good; tell connected services to forget it.

    Every session ends: other devices get UNAUTHORIZED and learn why from user.checkDeletion.
    """
    auth = ctx.services.auth
    user = await users.get(ctx.db, ctx.user.id)
    await auth.throttle.check(user.email, ctx.client_address)
    if not await auth.passwords.verify(user.password_hash, input.password):
        await auth.throttle.failed(user.email, ctx.client_address)
        raise Unauthenticated("password is incorrect")
    report = await data_rights.delete_user(
        ctx.db,
        user.id,
        registry=ctx.services.plugins,
        cipher=_cipher(ctx),
        retention_days=ctx.settings.tombstone_retention_days,
    )
    return DeleteAccountResult(
        deleted=True,
        vendors_deauthorized=report.vendors_deauthorized,
        vendors_failed=sorted(report.vendors_failed),
    )


def _cipher(ctx: Context) -> object | None:
    """The vendor token cipher, when this build links vendor accounts."""
    try:
        from trainer.store.accounts import TokenCipher
    except ImportError:
        return None
    return TokenCipher.for_settings(ctx.settings)


@router.mutation("checkDeletion", public=True)
async def check_deletion(ctx: Context, input: CheckDeletionInput) -> CheckDeletionResult:
    """After auth.refresh failed: was this session's account deleted? (A POST: the token stays out of URLs.)"""
    when = await data_rights.deleted_at(ctx.db, input.refresh_token)
    return CheckDeletionResult(deleted=when is not None, deleted_at=when)
