"""The deployment files parse and keep their promises (no Docker engine or systemd needed to check).

What runs where: YAML and Dockerfile checks always; `systemd-analyze verify`, `caddy validate` and
`nginx -t` when those programs are installed (they are skipped otherwise, never faked).
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
UNITS = ["trainer.service", "trainer-worker.service"]


def compose() -> dict:
    return yaml.safe_load((PACKAGING / "compose.yaml").read_text())


def test_compose_runs_servers_without_worker_workers_postgres16_and_redis() -> None:
    services = compose()["services"]
    assert services["server"]["command"] == ["serve", "--no-worker"]
    assert services["worker"]["command"] == ["worker"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("server", "worker"):
        service = services[name]
        env = service["environment"]
        assert (
            env["TRAINER_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["TRAINER_DATABASE_URL"]
        )
        assert env["TRAINER_QUEUE_URL"].startswith("redis://redis:")
        assert "TRAINER_SECRET_KEY" in env  # shared by every replica
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert service["healthcheck"]["test"]
    assert "/readyz" in " ".join(services["server"]["healthcheck"]["test"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_variables_are_all_in_env_example() -> None:
    text = (PACKAGING / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    documented = {
        line.split("=", 1)[0]
        for line in (PACKAGING / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= documented, f"not in env.example: {sorted(used - documented)}"


def test_dockerfile_is_multistage_non_root_with_healthcheck_and_volume() -> None:
    text = (PACKAGING / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    user = re.search(r"^USER (\S+)", text, re.M)
    assert user and not user.group(1).startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", text, re.M)
    assert re.search(r'^VOLUME \["/var/lib/trainer"\]', text, re.M)
    assert "TRAINER_DATA_DIR=/var/lib/trainer" in text


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    text = (PACKAGING / "Dockerfile").read_text()
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for match in re.finditer(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in match.group(1).split():
            assert (ROOT / source).exists(), source
            assert source not in ignored, source


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((PACKAGING / name).read_text())
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_units_are_hardened(name: str) -> None:
    service = unit(name)["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/trainer"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["User"] == "trainer"
    assert "serve" in service["ExecStart"] if name == "trainer.service" else "worker" in service["ExecStart"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", UNITS)
def test_units_pass_systemd_analyze(name: str, tmp_path: Path) -> None:
    # verify wants ExecStart to exist: point it at a program that does.
    copy = tmp_path / name
    copy.write_text(
        (PACKAGING / name).read_text().replace("/usr/local/bin/trainer", shutil.which("true") or "/bin/true")
    )
    verify = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(copy)], capture_output=True, text=True
    )
    assert security.returncode == 0, security.stdout[-2000:]


def proxy_config(lang: str) -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    (body,) = [b for tag, b in re.findall(r"```(\w+)\n(.*?)```", text, re.S) if tag == lang]
    return body


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
def test_caddy_example_is_valid(tmp_path: Path) -> None:
    (tmp_path / "Caddyfile").write_text(proxy_config("caddy"))
    done = subprocess.run(
        ["caddy", "validate", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("openssl") is None, reason="nginx is not installed")
def test_nginx_example_is_valid(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=trainer.example.com",
        ],
        check=True,
        capture_output=True,
    )
    site = proxy_config("nginx")
    site = site.replace("/etc/letsencrypt/live/trainer.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/trainer.example.com/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"events {{}}\nhttp {{\n    include {tmp_path / 'site.conf'};\n}}\n")
    done = subprocess.run(
        [
            "nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-g",
            f"pid {tmp_path / 'nginx.pid'}; error_log stderr;",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
