"""Activity files into the store: `trainer import` over every fixture, the app's upload endpoint,
and activities.getStreams. (What each parser extracts is pinned in test_fileimport.py.)"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from trainer_cli.main import app
from trainer_plugins.fileimport.plugin import FileImportPlugin
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET
from tests.fakes.strava import FakeStrava
from tests.helpers import call, data, error_code, register
from tests.plugins.conftest import app_registry, link, write_config
from trainer.db import Database, create_database
from trainer.normalized import ImportedActivity
from trainer.plugins import InboxEvent
from trainer.store import users
from trainer.store.activities import save_imported

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REFUSED = {
    "MonitoringFile.fit": "not an activity",
    "WorkoutIndividualSteps.fit": "not an activity",
    "activity-settings-corruptheader.fit": "corrupt FIT file",
    "activity-settings-nodata.fit": "corrupt FIT file",
    "activity-unexpected-eof.fit": "corrupt FIT file",
    "Mojstrovka.gpx": "not an activity",
    "gpx_with_garmin_extension.gpx": "empty GPX",
}
runner = CliRunner()


_PARSED: dict[str, list[ImportedActivity] | Exception] = {}


def _parsed(digest: str, path: Path) -> list[ImportedActivity] | Exception:
    if digest in _PARSED:
        return _PARSED[digest]
    _PARSED[digest] = _parse(path)
    return _PARSED[digest]


def _parse(path: Path) -> list[ImportedActivity] | Exception:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _real_parse(FileImportPlugin.__new__(FileImportPlugin), path)
        except Exception as exc:
            return exc


_real_parse = FileImportPlugin.parse


@pytest.fixture
def parse_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing every fixture takes ~15 s of pure-Python FIT decoding; the store path under test does
    not depend on it, so each file content is parsed once per session (by the real parser)."""

    def cached(self: FileImportPlugin, path: Path) -> list[ImportedActivity]:
        result = _parsed(hashlib.sha256(path.read_bytes()).hexdigest(), path)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(FileImportPlugin, "parse", cached)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    return write_config(
        tmp_path / "trainer.toml",
        {"database_url": db_url, "secret_key": TEST_SECRET, "data_dir": str(tmp_path / "data")},
    )


ACTIVITY_FOLDERS = ("fit", "gpx", "tcx")


def fixture_files() -> list[Path]:
    files = (p for folder in ACTIVITY_FOLDERS for p in (FIXTURES / folder).iterdir())
    return sorted(p for p in files if p.is_file() and not p.name.startswith("LICENSE"))


def lines_by_file(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        match = re.match(r"^(imported|duplicate|refused)\s+(\S+)(.*)$", line)
        if match:
            found[Path(match[2].rstrip(":")).name] = match[1] + match[3]
    return found


def on_db(url: str, action: Any) -> Any:
    """Run `await action(db)` on a fresh connection (CLI tests are synchronous: the CLI runs its own loop)."""

    async def body() -> Any:
        db = create_database(url)
        await db.open()
        try:
            return await action(db)
        finally:
            await db.close()

    return asyncio.run(body())


def count(url: str, sql: str) -> int:
    return on_db(url, lambda db: db.fetchval(sql))


@pytest.fixture
def runner_user(db_url: str) -> str:
    return on_db(db_url, lambda db: users.create(db, email="runner@example.com", password_hash="x")).id


@pytest.mark.usefixtures("parse_once")
def test_every_fixture_through_the_import_command(config: Path, db_url: str, runner_user: str, tmp_path: Path) -> None:
    export = tmp_path / "export"  # like an unpacked bulk export: nested folders of activity files
    for folder in ACTIVITY_FOLDERS:
        shutil.copytree(FIXTURES / folder, export / folder, ignore=shutil.ignore_patterns("LICENSE*"))
    result = runner.invoke(app, ["--config", str(config), "import", "--user", "runner@example.com", str(export)])
    assert result.exit_code == 1, result.output  # some fixtures are refused by design
    assert "Traceback" not in result.output
    outcome = lines_by_file(result.output)
    assert set(outcome) == {p.name for p in fixture_files()}
    for name, line in outcome.items():
        if name in REFUSED:
            assert line.startswith("refused") and REFUSED[name] in line, (name, line)
        else:
            assert line.startswith("imported"), (name, line)
    assert "(7 activities)" in outcome["activity-large-fenxi2-multisport.fit"]  # one per multisport leg
    assert "25 files: 18 imported (24 activities), 0 duplicates, 7 refused" in result.output

    assert count(db_url, "SELECT count(*) FROM activities WHERE source = 'file'") == 24
    assert count(db_url, "SELECT count(*) FROM activity_streams") >= 20
    # Every file with heart rate got its load from the user's settings.
    assert count(db_url, "SELECT count(*) FROM activities WHERE training_load > 0") >= 15
    assert count(db_url, "SELECT count(*) FROM daily_state") > 0  # and the daily state was recomputed

    again = runner.invoke(
        app, ["--config", str(config), "import", "--user", "runner@example.com", str(FIXTURES / "gpx")]
    )
    assert again.exit_code == 1
    assert lines_by_file(again.output)["korita-zbevnica.gpx"] == "duplicate"
    assert count(db_url, "SELECT count(*) FROM activities") == 24


@pytest.mark.usefixtures("parse_once", "runner_user")
def test_import_exit_codes_and_one_line_errors(config: Path, tmp_path: Path) -> None:
    good = tmp_path / "run.tcx.gz"
    good.write_bytes(gzip.compress((FIXTURES / "tcx" / "sup_activity_1.tcx").read_bytes()))
    ok = runner.invoke(app, ["--config", str(config), "import", "--user", "runner@example.com", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "1 files: 1 imported" in ok.output

    junk = tmp_path / "notes.txt"
    junk.write_text("not a workout")
    bad = runner.invoke(
        app,
        ["--config", str(config), "import", "--user", "runner@example.com", str(junk), str(tmp_path / "missing.fit")],
    )
    assert bad.exit_code == 1
    assert "unsupported file" in bad.output and "no such file" in bad.output
    assert "Traceback" not in bad.output

    nobody = runner.invoke(app, ["--config", str(config), "import", "--user", "nobody@example.com", str(good)])
    assert nobody.exit_code == 1 and "no user with email" in nobody.output


@pytest.mark.usefixtures("parse_once")
async def test_a_file_of_a_workout_strava_delivered_is_a_duplicate(
    vendor_client: TestClient, db: Database, fake_strava: FakeStrava
) -> None:
    fit = FIXTURES / "fit" / "garmin-fenix-5-run.fit"
    [leg] = FileImportPlugin.parse(None, fit)  # type: ignore[arg-type]
    athlete_id = fake_strava.add_athlete()
    auth = await register(vendor_client, "runner@example.com")
    account = await link(db, "strava", auth["user"]["id"], athlete_id, fake_strava.issue_tokens(athlete_id))
    same = fake_strava.add_activity(
        athlete_id,
        start=leg.activity.start_time,
        elapsed_s=int(leg.activity.duration_s or 0),
        distance_m=leg.activity.distance_m or 0,
    )
    plugin = app_registry(vendor_client).get("strava")
    event = InboxEvent("e", "strava", "activity", account.user_id, str(athlete_id), str(same["id"]), 0, {}, 0)
    [upsert] = await plugin.process(event, account)
    async with db.transaction() as tx:
        from_strava = await save_imported(tx, account.user_id, upsert.imported)

    status, body = await upload(vendor_client, auth["accessToken"], fit)
    assert status == 200, body
    assert body["activityIds"] == [from_strava.activity_id]
    assert body["files"][0]["status"] == "duplicate"
    assert "another source" in body["files"][0]["reason"]


async def upload(client: TestClient, token: str | None, *files: Path, name: str | None = None) -> tuple[int, dict]:
    form = aiohttp.FormData()
    for path in files:
        form.add_field("file", path.read_bytes(), filename=name or path.name, content_type="application/octet-stream")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/api/v1/activities/upload", data=form, headers=headers)
    return response.status, await response.json()


@pytest.mark.usefixtures("parse_once")
async def test_upload_and_streams_for_the_owner_only(client: TestClient) -> None:
    owner = await register(client, "owner@example.com")
    other = await register(client, "other@example.com")
    gpx = FIXTURES / "gpx" / "korita-zbevnica.gpx"
    status, body = await upload(client, owner["accessToken"], gpx, name="../../etc/passwd<script>.gpx")
    assert status == 201, body
    [activity_id] = body["activityIds"]
    assert body["files"] == [
        {"name": "passwd_script_.gpx", "status": "imported", "activityIds": [activity_id], "reason": None}
    ]

    status, result = await call(
        client,
        "activities.getStreams",
        {"id": activity_id, "types": ["heart_rate", "altitude_m"]},
        token=owner["accessToken"],
    )
    assert status == 200, result
    streams = data(result)
    assert streams["sampleCount"] == len(streams["time"]) > 100
    assert set(streams["channels"]) <= {"heart_rate", "altitude_m"} and "altitude_m" in streams["channels"]
    assert streams["units"]["altitude_m"] == "m"

    status, result = await call(client, "activities.getStreams", {"id": activity_id}, token=other["accessToken"])
    assert status == 404 and error_code(result) == "NOT_FOUND"
    status, result = await call(
        client, "activities.getStreams", {"id": activity_id, "types": ["pulse"]}, token=owner["accessToken"]
    )
    assert status == 400 and "pulse" in result["error"]["message"]


async def test_upload_refusals(client: TestClient, tmp_path: Path) -> None:
    owner = await register(client, "owner@example.com")
    corrupt = FIXTURES / "fit" / "activity-unexpected-eof.fit"
    status, body = await upload(client, owner["accessToken"], corrupt)
    assert status == 400
    assert (
        body["error"]["message"] == "activity-unexpected-eof.fit: corrupt FIT file: unexpected end of file at byte 768"
    )

    status, body = await upload(client, None, corrupt)
    assert status == 401

    response = await client.post(
        "/api/v1/activities/upload", json={"file": "x"}, headers={"Authorization": f"Bearer {owner['accessToken']}"}
    )
    assert response.status == 400 and "multipart/form-data" in (await response.json())["error"]["message"]


async def test_upload_size_limit(tmp_path: Path, db_url: str, db: Database) -> None:
    from aiohttp.test_utils import TestServer

    from tests.conftest import make_settings
    from trainer.app import create_app

    settings = make_settings(tmp_path, db_url, upload_max_bytes=4096)
    async with TestClient(TestServer(create_app(settings, db=db))) as small:
        owner = await register(small, "owner@example.com")
        status, body = await upload(small, owner["accessToken"], FIXTURES / "gpx" / "korita-zbevnica.gpx")
    assert status == 413 and "upload limit" in body["error"]["message"]
    assert await db.fetchval("SELECT count(*) FROM activities") == 0
