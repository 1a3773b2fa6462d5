"""`meterhouse rate run` runs dbt in its own process: a failing dbt run still ends the command with
dbt's exit code and error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.processes import REPO_ROOT, free_port, meterhouse_command


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
