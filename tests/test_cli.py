"""The `trainer` command: admin commands through Typer's CliRunner, and `trainer serve` as a real process.

The serve test is the zero-config quick start: in an empty directory with no settings at all, the
installed console script must come up on SQLite, answer /readyz, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import Result
from trainer_cli.main import app
from typer.testing import CliRunner

from tests.conftest import TEST_SECRET
from trainer import __version__
from trainer.auth.service import AuthService
from trainer.config import load_settings
from trainer.db import create_database
from trainer.errors import TrainerError
from trainer.store import users

runner = CliRunner()
PASSWORD = "correct horse battery"


def trainer_executable() -> list[str]:
    """The installed console script (what a user runs), or the same entry point through this Python."""
    script = Path(sys.executable).parent / "trainer"
    if script.exists():
        return [str(script)]
    found = shutil.which("trainer")
    return [found] if found else [sys.executable, "-c", "from trainer_cli.main import main; main()"]


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Settings for CLI runs against the test's database, with cheap argon2 parameters."""
    return {
        "TRAINER_DATABASE_URL": db_url,
        "TRAINER_SECRET_KEY": TEST_SECRET,
        "TRAINER_DATA_DIR": str(tmp_path / "data"),
        "TRAINER_ARGON2_MEMORY_KIB": "1024",
        "TRAINER_ARGON2_TIME_COST": "1",
        "COLUMNS": "200",
    }


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), env=env, input=input)


def one_line_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def try_login(env: dict[str, str], email: str, password: str) -> str:
    """'ok', or the error message a sign-in gets, checked against the database directly."""

    async def attempt() -> str:
        settings = load_settings(
            None,
            database_url=env["TRAINER_DATABASE_URL"],
            secret_key=TEST_SECRET,
            argon2_memory_kib=1024,
            argon2_time_cost=1,
            data_dir=env["TRAINER_DATA_DIR"],
        )
        async with create_database(settings.resolved_database_url, pool_size=1) as db:
            try:
                await AuthService(db, settings, TEST_SECRET).login(email, password, address="cli-test")
            except TrainerError as exc:
                return exc.message
            return "ok"

    return asyncio.run(attempt())


# -- version and help ------------------------------------------------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert re.fullmatch(rf"trainer {re.escape(__version__)} \(Python 3\.\d+\.\d+\)\n", result.stdout)


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("serve", "migrate", "user", "config", "version"):
        assert command in result.stdout


# -- migrate (details in test_migrate.py) -----------------------------------------------------------


def test_migrate_on_a_current_database_says_up_to_date(env: dict[str, str]) -> None:
    result = invoke(env, "migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


# -- user -----------------------------------------------------------------------------------------


def test_user_create_list_and_duplicates(env: dict[str, str]) -> None:
    result = invoke(env, "user", "create", "coach@example.com", "--admin", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert re.match(r"created admin user coach@example.com \([0-9a-f-]{36}\)", result.stdout)
    result = invoke(env, "user", "create", "athlete@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert result.stdout.startswith("created user athlete@example.com")
    assert try_login(env, "athlete@example.com", PASSWORD) == "ok"

    listing = invoke(env, "user", "list")
    assert listing.exit_code == 0
    rows = {line.split()[1]: line for line in listing.stdout.splitlines() if "@" in line}
    assert "yes" in rows["coach@example.com"] and "active" in rows["coach@example.com"]
    assert "yes" not in rows["athlete@example.com"]

    duplicate = invoke(env, "user", "create", "ATHLETE@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert duplicate.exit_code == 1
    assert "already exists" in one_line_error(duplicate)


@pytest.mark.parametrize(
    ("email", "stdin", "message"),
    [
        ("not-an-email", PASSWORD + "\n", "is not an email address"),
        ("a@example.com", "short\n", "password must be at least 10 characters"),
        ("a@example.com", "", "no password on standard input"),
    ],
)
def test_user_create_refusals_are_one_line(env: dict[str, str], email: str, stdin: str, message: str) -> None:
    result = invoke(env, "user", "create", email, "--password-stdin", input=stdin)
    assert result.exit_code == 1
    assert message in one_line_error(result)
    assert "@example.com" not in invoke(env, "user", "list").stdout


def test_user_disable_and_enable(env: dict[str, str]) -> None:
    invoke(env, "user", "create", "d@example.com", "--password-stdin", input=PASSWORD + "\n")
    result = invoke(env, "user", "disable", "d@example.com")
    assert (result.exit_code, result.stdout.strip()) == (0, "disabled d@example.com")
    assert "disabled" in invoke(env, "user", "list").stdout
    assert try_login(env, "d@example.com", PASSWORD) == "this account is disabled"

    result = invoke(env, "user", "enable", "d@example.com")
    assert (result.exit_code, result.stdout.strip()) == (0, "enabled d@example.com")
    assert try_login(env, "d@example.com", PASSWORD) == "ok"


def test_user_commands_on_an_unknown_email(env: dict[str, str]) -> None:
    for command in ("disable", "enable"):
        result = invoke(env, "user", command, "ghost@example.com")
        assert result.exit_code == 1
        assert one_line_error(result) == "error: no user with email ghost@example.com"
    result = invoke(env, "user", "reset-password", "ghost@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 1


def test_user_reset_password_ends_sessions(env: dict[str, str], db_url: str) -> None:
    invoke(env, "user", "create", "r@example.com", "--password-stdin", input=PASSWORD + "\n")
    assert try_login(env, "r@example.com", PASSWORD) == "ok"  # opens a session
    result = invoke(env, "user", "reset-password", "r@example.com", "--password-stdin", input="a brand new secret\n")
    assert result.exit_code == 0, result.output
    assert "all of its sessions were signed out" in result.stdout
    assert try_login(env, "r@example.com", PASSWORD) == "email or password is incorrect"
    assert try_login(env, "r@example.com", "a brand new secret") == "ok"

    async def live_sessions() -> int:
        async with create_database(db_url, pool_size=1) as db:
            user = await users.get_by_email(db, "r@example.com")
            return await db.fetchval(
                "SELECT count(*) FROM refresh_families WHERE user_id = $1 AND revoked_at IS NULL", user.id
            )

    assert asyncio.run(live_sessions()) == 1  # only the sign-in made after the reset

    short = invoke(env, "user", "reset-password", "r@example.com", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least" in one_line_error(short)


def test_user_invite_code_registers_once(env: dict[str, str]) -> None:
    result = invoke(env, "user", "invite", "--note", "for my club")
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"invite code: (\S+) \(valid until \d{4}-\d\d-\d\d, single use\)\n", result.stdout)
    assert match, result.stdout
    code = match[1]

    async def register(email: str) -> str:
        settings = load_settings(
            None,
            database_url=env["TRAINER_DATABASE_URL"],
            secret_key=TEST_SECRET,
            registration="invite",
            argon2_memory_kib=1024,
            argon2_time_cost=1,
        )
        async with create_database(settings.resolved_database_url, pool_size=1) as db:
            try:
                await AuthService(db, settings, TEST_SECRET).register(email, PASSWORD, code)
            except TrainerError as exc:
                return exc.message
            return "ok"

    assert asyncio.run(register("first@example.com")) == "ok"
    assert "invite code is not valid" in asyncio.run(register("second@example.com"))


# -- bad configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "variable", "value", "named"),
    [
        (["migrate"], "TRAINER_DATABASE_URL", "mysql://x", "database_url"),
        (["user", "list"], "TRAINER_REGISTRATION", "sometimes", "registration"),
        (["serve"], "TRAINER_PORT", "0", "port"),
        (["config", "show"], "TRAINER_LOG_FORMAT", "yaml", "log_format"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    command: list[str], variable: str, value: str, named: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, command, env={variable: value, "TRAINER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert f"'{named}'" in one_line_error(result)
    assert "Traceback" not in result.output


def test_bad_config_file_through_the_real_executable(tmp_path: Path) -> None:
    """The same one line from the installed program: nothing on stdout, no traceback."""
    (tmp_path / "trainer.toml").write_text('registration = "sometimes"\n')
    proc = subprocess.run(
        [*trainer_executable(), "config", "show"],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "'registration'" in proc.stderr and "trainer.toml" in proc.stderr


# -- serve: the zero-config quick start ----------------------------------------------------------


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINER_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"trainer serve exited early: {proc.communicate()}")
        try:
            status, body = get_json(f"http://127.0.0.1:{port}/readyz")
            if status == 200:
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError("trainer serve did not become ready")


def test_serve_with_no_configuration(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*trainer_executable(), "serve"],
        cwd=tmp_path,
        env=clean_environment(TRAINER_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_ready(proc, port) == {"status": "ready", "database": "sqlite"}
        status, body = get_json(f"http://127.0.0.1:{port}/healthz")
        assert (status, body["version"]) == (200, __version__)
        # Everything lives in ./trainer-data: the database and a private, generated secret key.
        data = tmp_path / "trainer-data"
        assert (data / "trainer.db").is_file()
        assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    banner = f"trainer listening on http://127.0.0.1:{port} (SQLite at trainer-data/trainer.db"
    assert any(line.startswith(banner) and line.endswith("Ctrl-C to stop") for line in out.splitlines()), out
    assert "Traceback" not in err


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [*trainer_executable(), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and f"cannot listen on 127.0.0.1:{port}" in errors[0]
    assert "Traceback" not in proc.stderr
