"""`meterhouse rate run` runs dbt in its own process: a failing dbt run still ends the command with
dbt's exit code and error. Its dbt unit tests run again only when what they test changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from meterhouse.rating import (
    DBT_PROJECT_DIR,
    RatingRequest,
    unit_tests_fingerprint,
    unit_tests_needed,
)
from tests.support.processes import REPO_ROOT, free_port, meterhouse_command
from warehouse.settings import Settings


def test_a_run_against_an_unreachable_warehouse_fails_with_dbts_error(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "WAREHOUSE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "MH_WAREHOUSE_PASSWORD": "unused",
        "DBT_TARGET_PATH": str(tmp_path),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        meterhouse_command("rate", "run", "--no-progress", "--no-tests"),
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2  # dbt's code for "dbt itself failed"
    assert "Connection refused" in result.stderr
    assert "Done." not in result.stdout


def test_unit_tests_run_again_only_when_what_they_test_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path))
    settings = Settings(warehouse_url="http://127.0.0.1:1", warehouse_password="unused")
    plain = RatingRequest()
    # Never passed in this target: a plain run runs them.
    assert unit_tests_needed(plain, settings)
    assert "--exclude-resource-type" not in plain.dbt_args(unit_tests=True)
    (tmp_path / "unit_tests_passed").write_text(unit_tests_fingerprint(plain, settings))
    # Passed with the same project, versions, warehouse and selection: the data tests only.
    assert not unit_tests_needed(plain, settings)
    assert plain.dbt_args(unit_tests=False)[-2:] == ["--exclude-resource-type", "unit_test"]
    # A full refresh always runs them; so does another warehouse or selection.
    assert unit_tests_needed(RatingRequest(full_refresh=True), settings)
    other_warehouse = Settings(warehouse_url="http://127.0.0.1:2", warehouse_password="unused")
    assert unit_tests_needed(plain, other_warehouse)
    assert unit_tests_needed(RatingRequest(select=("+fct_fees",)), settings)
    assert not unit_tests_needed(RatingRequest(run_tests=False), settings)


def test_the_unit_tests_fingerprint_follows_the_projects_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr("meterhouse.rating.DBT_PROJECT_DIR", project)
    settings = Settings(warehouse_url="http://127.0.0.1:1", warehouse_password="unused")
    before = unit_tests_fingerprint(RatingRequest(), settings)
    macro = project / "macros" / "money.sql"
    macro.write_text(macro.read_text() + "\n-- a changed macro\n")
    assert unit_tests_fingerprint(RatingRequest(), settings) != before
