"""Run dbt on the analytics marts as `meterhouse` does: the project's profile, settings from env."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.support.processes import REPO_ROOT, VENV_BIN

DBT_PROJECT = REPO_ROOT / "dbt_project"
ANALYTICS_SELECTOR = "+path:models/marts/analytics"


def run_dbt(
    args: list[str], env: Mapping[str, str], target_path: Path, as_of: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run dbt with its own target and log directories, so parallel runs never share state."""
    command = [
        str(VENV_BIN / "dbt"), *args,
        "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target-path", str(target_path), "--log-path", str(target_path / "logs"),
        "--vars", f"{{rating_as_of: '{as_of}'}}",
    ]  # fmt: skip
    return subprocess.run(
        command,
        env={**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def build_analytics(env: Mapping[str, str], target_path: Path, as_of: str) -> str:
    """Seed, build the analytics marts and their parents, and run the analytics data and unit
    tests, in one dbt build (one start and parse instead of three). Only the tests the selectors
    name run (`--indirect-selection empty`): the parents' own tests belong to rating's suite."""
    selectors = ["path:seeds/analytics", ANALYTICS_SELECTOR, "path:tests/analytics"]
    result = run_dbt(
        ["build", "--select", *selectors, "--indirect-selection", "empty"], env, target_path, as_of
    )
    if result.returncode != 0:
        raise AssertionError(f"dbt build failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
