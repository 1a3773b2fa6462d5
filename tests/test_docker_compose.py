"""docker-compose.yml is the production shape; no Docker engine runs here, so validate it."""

from __future__ import annotations

import subprocess

import yaml

from tests.support.processes import REPO_ROOT
from tests.support.system_packages import ensure_command

SERVICES = {"clickhouse", "migrate", "ingest", "api", "dagster-webserver", "dagster-daemon",
            "dashboards"}  # fmt: skip


def test_compose_file_is_valid_and_complete() -> None:
    compose = ensure_command("docker-compose", "docker-compose")
    result = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"CLICKHOUSE_PASSWORD": "secret", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == SERVICES
    assert config["services"]["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    for name in SERVICES - {"clickhouse"}:
        env = config["services"][name]["environment"]
        assert env["WAREHOUSE_URL"] == "http://clickhouse:8123", name


def test_compose_refuses_to_start_without_a_password() -> None:
    compose = ensure_command("docker-compose", "docker-compose")
    result = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "CLICKHOUSE_PASSWORD" in result.stderr
