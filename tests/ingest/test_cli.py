"""`trainer inbox`, `trainer webhooks urls` and the queue-related refusals of `worker` and `serve`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import Result
from trainer_cli.main import app as cli
from typer.testing import CliRunner

import trainer.plugins
from tests.conftest import TEST_SECRET
from tests.ingest.conftest import connect
from tests.ingest.test_pipeline import event, record
from tests.ingest.testplugin import NAME
from tests.ingest.worker_main import with_test_plugin
from trainer.db import Database
from trainer.ingest import inbox
from trainer.ingest.pipeline import Context, process_row
from trainer.plugins import NewEvent


def env_for(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "TRAINER_DATABASE_URL": db_url,
        "TRAINER_DATA_DIR": str(tmp_path / "data"),
        "TRAINER_SECRET_KEY": TEST_SECRET,
        "COLUMNS": "250",
        **extra,
    }


async def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env, input=input)


async def test_list_show_retry_and_purge(context: Context, db: Database, db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path)
    user_id = await connect(db, "ops@example.com", "ext-1")
    done, failed = await record(db, user_id, event("a-1", ago_s=100), event("a-2", "permanent", ago_s=50))
    secret_url = "https://apis.example.com/rest/activities?id=1&token=SECRET-CALLBACK-TOKEN"
    hinted = NewEvent("activity", "ext-1", "p-1", 1, "k", {"cb": secret_url})
    assert await inbox.record_events(db, NAME, user_id, [hinted])
    assert await process_row(context, done) == "done"
    assert await process_row(context, failed) == "failed"

    listed = await invoke(env, "inbox", "list", "--state", "failed", "--user", "ops@example.com")
    assert listed.exit_code == 0, listed.output
    assert failed in listed.output and done not in listed.output
    assert "permanent failure" in listed.output
    assert "1 failed" in listed.output and "0 done" in listed.output  # counts under the same filter

    shown = await invoke(env, "inbox", "show", failed[:-6])  # a unique prefix is enough
    assert shown.exit_code == 0, shown.output
    assert "does not exist" in shown.output and "a-2" in shown.output

    [pending] = [r for r in await inbox.list_rows(db, inbox.Filter(states=("pending",)))]
    shown = await invoke(env, "inbox", "show", pending.id)
    assert "token=***" in shown.output and "SECRET-CALLBACK-TOKEN" not in shown.output

    assert (await invoke(env, "inbox", "show", "nonexistent-id")).exit_code == 1
    assert (await invoke(env, "inbox", "list", "--state", "lost")).exit_code == 2

    retried = await invoke(env, "inbox", "retry", "--plugin", NAME)
    assert retried.exit_code == 0, retried.output
    assert "1 event(s) queued again" in retried.output
    row = await inbox.get(db, failed)
    assert (row.state, row.attempts) == ("pending", 0)
    assert (tmp_path / "data" / "queue.db").exists()  # rung on the configured (default SQLite) queue

    purged = await invoke(env, "inbox", "purge", "--state", "done", "--yes")
    assert purged.exit_code == 0 and "1 event(s) deleted" in purged.output
    assert (await invoke(env, "inbox", "purge", "--state", "pending", "--yes")).exit_code == 2
    assert {r.id for r in await inbox.list_rows(db)} == {failed, pending.id}


async def test_webhook_urls_show_the_secret_path(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer.plugins, "entry_points", with_test_plugin)
    env = env_for(db_url, tmp_path, TRAINER_PUBLIC_URL="https://trainer.example.com")
    result = await invoke(env, "webhooks", "urls")
    assert result.exit_code == 0, result.output
    from trainer.config import load_settings
    from trainer.ingest.paths import path_token

    token = path_token(load_settings(None, secret_key=TEST_SECRET), TEST_SECRET)
    assert f"https://trainer.example.com/webhooks/{token}/{NAME}/activities" in result.output
    assert f"https://trainer.example.com/webhooks/{token}/{NAME} " in result.output
    assert "12 MiB" in result.output


async def test_memory_queue_needs_the_server_process(db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path, TRAINER_QUEUE_URL="memory://")
    worker = await invoke(env, "worker")
    assert worker.exit_code == 2 and "memory://" in worker.output
    serve = await invoke(env, "serve", "--no-worker")
    assert serve.exit_code == 2 and "memory://" in serve.output
