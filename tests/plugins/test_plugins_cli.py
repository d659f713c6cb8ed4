"""`trainer plugins ...`: the list of installed plugins, and Strava's subscription commands run as a
separate process while the server answers Strava's callback check."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiohttp.test_utils import TestServer
from trainer_cli.main import app
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET, make_settings
from tests.fakes.strava import FakeStrava
from tests.plugins.conftest import PATH_TOKEN, write_config
from trainer.app import create_app

runner = CliRunner()


def test_list_shows_the_bundled_plugins(tmp_path: Path) -> None:
    env = {"TRAINER_SECRET_KEY": TEST_SECRET, "TRAINER_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    result = runner.invoke(app, ["plugins", "list"], env=env)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert (
        "webhooks, source, oauth, backfill" in rows["strava"] and "webhooks, source, oauth, backfill" in rows["garmin"]
    )
    assert " no " in rows["strava"]  # not configured: disabled, not an error
    assert "import" in rows["files"] and " yes " in rows["files"]

    bad = runner.invoke(app, ["plugins", "list"], env={**env, "TRAINER_PLUGINS__STRAVA__ENABLED": "true"})
    assert bad.exit_code == 2 and "client_id and client_secret are required" in bad.output


async def trainer(config: Path, *args: str) -> tuple[int, str]:
    """The installed command in its own process (so the server in this test's loop stays free)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from trainer_cli.main import main; main()",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode()


async def test_subscribe_while_the_server_answers_the_check(tmp_path: Path, fake_strava: FakeStrava) -> None:
    db_url = f"sqlite:///{tmp_path / 'trainer.db'}"
    strava = fake_strava.plugin_settings(subscription_id=120475)
    settings = make_settings(tmp_path, db_url, webhook_path_token=PATH_TOKEN, plugins={"strava": strava})
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        config = write_config(
            tmp_path / "trainer.toml",
            {
                "database_url": db_url,
                "secret_key": TEST_SECRET,
                "data_dir": str(tmp_path / "data"),
                "public_url": str(server.make_url("")).rstrip("/"),
                "webhook_path_token": PATH_TOKEN,
                "plugins": {"strava": strava},
            },
        )
        code, output = await trainer(config, "plugins", "strava", "subscribe")
        assert code == 0, output
        assert "subscribed: id 120475" in output and "subscription_id = 120475" in output
        assert PATH_TOKEN not in output  # the secret path token is never printed whole
        [callback] = fake_strava.subscriptions.values()
        assert callback.endswith(f"/webhooks/{PATH_TOKEN}/strava")

        code, output = await trainer(config, "plugins", "strava", "status")
        assert code == 0 and "id 120475" in output and "(configured)" in output

        code, output = await trainer(config, "plugins", "strava", "unsubscribe")
        assert code == 0 and "unsubscribed: id 120475" in output and not fake_strava.subscriptions
    finally:
        await server.close()

    # With the server down, Strava's check fails: one line, exit code 1, nothing subscribed.
    code, output = await trainer(config, "plugins", "strava", "subscribe")
    assert code == 1 and "callback url GET to callback URL does not return 200" in output
    assert "Traceback" not in output and not fake_strava.subscriptions


async def test_backfill_command(tmp_path: Path, fake_strava: FakeStrava) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.plugins.conftest import link, new_user
    from trainer.db import create_database
    from trainer.db.migrate import migrate

    db_url = f"sqlite:///{tmp_path / 'trainer.db'}"
    athlete = fake_strava.add_athlete()
    for day in range(7):
        fake_strava.add_activity(athlete, start=datetime(2024, 3, 1, 7, tzinfo=UTC) + timedelta(days=day))
    db = create_database(db_url)
    await db.open()
    try:
        await migrate(db)
        user = await new_user(db, "runner@example.com")
        await link(db, "strava", user, athlete, fake_strava.issue_tokens(athlete))
        config = write_config(
            tmp_path / "trainer.toml",
            {
                "database_url": db_url,
                "secret_key": TEST_SECRET,
                "data_dir": str(tmp_path / "data"),
                "queue_url": "memory://",
                "plugins": {"strava": fake_strava.plugin_settings(per_page=3)},
            },
        )
        args = ("backfill", "--user", "runner@example.com", "--source", "strava", "--since", "2024-02-01")
        code, output = await trainer(config, *args)
        assert code == 0, output
        assert "4 pages, 10 events, 7 new in the inbox" in output  # 3+3+3+1: each page repeats its boundary
        assert await db.fetchval("SELECT count(*) FROM inbox WHERE user_id = $1", user) == 7

        code, output = await trainer(
            config, "backfill", "--user", "runner@example.com", "--source", "garmin", "--since", "2024-02-01"
        )
        assert code == 1 and "no enabled plugin 'garmin'" in output and "Traceback" not in output
    finally:
        await db.close()
