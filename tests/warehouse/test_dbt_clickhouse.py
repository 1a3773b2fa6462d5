"""dbt-clickhouse (driver: http) against the warehouse: seed, view, table, incremental, snapshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from tests.conftest import Warehouse
from tests.support.processes import VENV_BIN

FIXTURE = Path(__file__).parent / "dbt_fixture"


def _profile(warehouse: Warehouse, schema: str) -> str:
    settings = warehouse.settings()
    return f"""warehouse_fixture:
  target: test
  outputs:
    test:
      type: clickhouse
      driver: http
      host: {settings.warehouse_host}
      port: {settings.warehouse_port}
      user: {warehouse.user}
      password: "{warehouse.password}"
      schema: {schema}
      threads: 2
      connect_timeout: 30
      send_receive_timeout: 300
"""


def _dbt(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PROFILES_DIR": str(project),
    }
    return subprocess.run(
        [str(VENV_BIN / "dbt"), *args, "--project-dir", str(project)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_dbt_project_builds_runs_incrementally_and_snapshots(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project)
    schema = f"dbt_fixture_{uuid.uuid4().hex[:6]}"
    (project / "profiles.yml").write_text(_profile(warehouse, schema))

    first = _dbt(project, "build")
    assert first.returncode == 0, first.stdout[-4000:]
    client = warehouse.client()
    assert client.query(
        f"SELECT currency, plans, total_cents FROM {schema}.plans_by_currency ORDER BY currency"
    ).result_rows == [("EUR", 1, 19900), ("USD", 2, 5900)]
    assert client.command(f"SELECT count() FROM {schema}.events_incremental") == 5

    second = _dbt(project, "run", "--select", "events_incremental", "--vars", "{rows: 8}")
    assert second.returncode == 0, second.stdout[-4000:]
    rows = client.query(f"SELECT n, doubled FROM {schema}.events_incremental ORDER BY n")
    assert rows.result_rows == [(n, 2 * n) for n in range(8)]

    client.command(f"ALTER TABLE {schema}.plans_seed UPDATE amount_cents = 5900 "
                   "WHERE plan_code = 'growth' SETTINGS mutations_sync = 2")  # fmt: skip
    snapshot = _dbt(project, "snapshot")
    assert snapshot.returncode == 0, snapshot.stdout[-4000:]
    history = client.query(
        f"SELECT amount_cents, dbt_valid_to IS NULL FROM {schema}.plans_snapshot "
        "WHERE plan_code = 'growth' ORDER BY dbt_valid_from"
    ).result_rows
    assert history == [(4900, False), (5900, True)]

    tests = _dbt(project, "test")
    assert tests.returncode == 0, tests.stdout[-4000:]
    assert "PASS=4" in tests.stdout
