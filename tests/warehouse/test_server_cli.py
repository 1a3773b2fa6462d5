"""The warehouse as a user starts it: first-start users, migrations, limits, sessions, --help."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from meterhouse.cli import app
from tests.conftest import Warehouse
from tests.support.processes import (
    ServiceProcess,
    failed_in_one_line,
    free_port,
    meterhouse_command,
)
from warehouse.migrate import discover


def _walk(command, path):  # type: ignore[no-untyped-def]
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, [*path, name])


def test_every_subcommand_has_help() -> None:
    paths = list(_walk(get_command(app), []))
    assert ["warehouse", "serve"] in paths and ["warehouse", "user", "add"] in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
    installed = subprocess.run(meterhouse_command("--help"), capture_output=True, text=True)
    assert installed.returncode == 0 and "warehouse" in installed.stdout


@pytest.mark.embedded
def test_first_start_generates_passwords_once_and_keeps_only_hashes(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MH_WAREHOUSE_")}
    command = meterhouse_command("warehouse", "serve", "--port", str(port), "--data-dir",
                                 str(tmp_path / "data"))  # fmt: skip
    health = f"http://127.0.0.1:{port}/ping"
    server = ServiceProcess(command, health, env=env, log_path=tmp_path / "first.log")
    server.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                                      start_new_session=True)  # fmt: skip
    server.wait_healthy()
    server.stop()
    assert server.process.stdout is not None
    printed = server.process.stdout.read()
    passwords = dict(re.findall(r"Created warehouse user '(\w+)' with password: (\S+)", printed))
    assert set(passwords) == {"admin", "analyst"}
    stored = (tmp_path / "data" / "users.yaml").read_text()
    assert passwords["admin"] not in stored and passwords["analyst"] not in stored
    assert yaml.safe_load(stored)["users"]["analyst"]["role"] == "analyst"
    again = ServiceProcess(command, health, env=env, log_path=tmp_path / "second.log").start()
    try:
        assert "Created warehouse user" not in again.log_tail()
        answer = httpx.post(f"http://127.0.0.1:{port}/", content=b"SELECT 42",
                            auth=("analyst", passwords["analyst"]))  # fmt: skip
        assert answer.text == "42\n"
    finally:
        again.stop()


def test_migrate_command_is_idempotent(warehouse: Warehouse) -> None:
    env = {**os.environ, **warehouse.env}
    for _ in range(2):
        result = subprocess.run(meterhouse_command("warehouse", "migrate"), env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "applied" not in result.stdout  # the session fixture already applied them all
    recorded = (
        warehouse.client()
        .query("SELECT version FROM schema_migrations FINAL ORDER BY version")
        .result_rows
    )
    assert [row[0] for row in recorded] == [m.version for m in discover()]


@pytest.mark.embedded
def test_result_size_limit_gives_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    env = {"MH_WAREHOUSE_ADMIN_PASSWORD": "pw", "MH_WAREHOUSE_MAX_RESULT_BYTES": "1000000"}
    command = meterhouse_command("warehouse", "serve", "--port", str(port), "--data-dir",
                                 str(tmp_path / "data"))  # fmt: skip
    with ServiceProcess(command, f"http://127.0.0.1:{port}/ping", env=env,
                        log_path=tmp_path / "log"):  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        small = httpx.post(url, content=b"SELECT number FROM numbers(10)", auth=("admin", "pw"))
        assert small.status_code == 200
        big = httpx.post(url, content=b"SELECT number FROM numbers(10000000)", auth=("admin", "pw"))
        assert big.status_code == 500
        assert big.headers["X-ClickHouse-Exception-Code"] == "396"
        assert "TOO_MANY_ROWS_OR_BYTES" in big.text


@pytest.mark.embedded
def test_idle_sessions_expire(warehouse: Warehouse) -> None:
    auth = (warehouse.user, warehouse.password)
    params = {"session_id": "expiring", "session_timeout": "1"}
    created = httpx.post(warehouse.url, params=params, content=b"SET max_threads = 2", auth=auth)
    assert created.status_code == 200
    check = {**params, "session_check": "1"}
    alive = httpx.post(warehouse.url, params=check, content=b"SELECT 1", auth=auth)
    assert alive.status_code == 200
    time.sleep(3)
    gone = httpx.post(warehouse.url, params=check, content=b"SELECT 1", auth=auth)
    assert gone.headers["X-ClickHouse-Exception-Code"] == "372"


def test_streamed_chunked_insert(warehouse: Warehouse) -> None:
    client = warehouse.client()
    client.command("CREATE TABLE IF NOT EXISTS streamed (n UInt64, s String) "
                   "ENGINE = MergeTree ORDER BY n")  # fmt: skip

    def body():  # type: ignore[no-untyped-def]
        yield b"INSERT INTO streamed FORMAT JSONEachRow\n"
        for block in range(50):
            yield b"".join(b'{"n":%d,"s":"%s"}\n' % (block * 2000 + i, b"x" * 40)
                           for i in range(2000))  # fmt: skip

    params = {"database": warehouse.database}
    response = httpx.post(warehouse.url, params=params, content=body(),
                          auth=(warehouse.user, warehouse.password))  # fmt: skip
    assert response.status_code == 200, response.text
    counts = client.query("SELECT count(), uniqExact(n) FROM streamed").result_rows
    assert counts == [(100_000, 100_000)]


@pytest.mark.parametrize("command", [("orgs", "list"), ("bill", "--pending")], ids=" ".join)
def test_a_warehouse_that_does_not_answer_is_one_line_naming_it(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"WAREHOUSE_URL": dead, "MH_WAREHOUSE_PASSWORD": "x"}
    stderr = failed_in_one_line(command, env, tmp_path)
    assert f"error: the warehouse at {dead} cannot be reached" in stderr


@pytest.mark.parametrize(
    "command", [("orgs", "list"), ("api", "serve", "--port", "0")], ids=" ".join
)
def test_a_database_never_migrated_is_one_line_naming_the_migration(
    warehouse: Warehouse, command: tuple[str, ...], tmp_path: Path
) -> None:
    # A server does not start on it either: every request would fail.
    env = {**warehouse.env, "MH_WAREHOUSE_DATABASE": "never_migrated"}
    stderr = failed_in_one_line(command, env, tmp_path)
    assert "has no database never_migrated: `meterhouse warehouse migrate` creates it" in stderr
