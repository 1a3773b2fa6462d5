"""``meterhouse bill`` run as an operator runs it, against the test warehouse."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

from tests.conftest import Warehouse
from tests.invoicing.catalog import Catalog, fresh_database
from tests.support.processes import REPO_ROOT, meterhouse_command


def bill(
    warehouse: Warehouse, database: str, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **warehouse.env,
        "MH_WAREHOUSE_DATABASE": database,
        "MH_HOME": str(home),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        meterhouse_command("bill", *args),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backfill_of_past_days_through_the_dagster_job(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    acme = catalog.customer("acme")
    first = date(2024, 1, 1)
    for month in range(3):
        catalog.fee(acme, 1000 + month, first + timedelta(days=31 * month))
    done = bill(
        warehouse, client.database or "", tmp_path, "--from", "2024-01-01", "--to", "2024-03-04"
    )
    assert done.returncode == 0, done.stderr
    # One Dagster run per month of billing days, each reporting what it did.
    assert "2024-01-01..2024-01-31 ok: 1 fees, 1 finalized" in done.stderr
    assert "2024-02-01..2024-03-02 ok: 1 fees, 1 finalized" in done.stderr
    assert "2024-03-03..2024-03-04 ok: 1 fees, 1 finalized" in done.stderr
    totals = client.query(
        "SELECT billing_date, total_amount_cents, number FROM invoices FINAL ORDER BY billing_date"
    ).result_rows
    assert totals == [
        (date(2024, 1, 1), 1000, "ACM-202401-001"),
        (date(2024, 2, 1), 1001, "ACM-202402-002"),
        (date(2024, 3, 3), 1002, "ACM-202403-003"),
    ]
    # Runs are recorded in Dagster's home (telemetry off) like runs from the schedule.
    dagster_home = tmp_path / "dagster"
    assert "enabled: false" in (dagster_home / "dagster.yaml").read_text()
    assert any((dagster_home / "storage").iterdir())
    again = bill(warehouse, client.database or "", tmp_path, "--date", "2024-02-01")
    assert again.returncode == 0 and "0 fees" in again.stderr


def test_pending_days_are_billed_in_runs_over_their_ranges(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    acme = catalog.customer("acme")
    days = (date(2023, 11, 5), date(2024, 2, 1), date(2024, 2, 9), date(2024, 2, 20))
    for amount, day in zip((500, 700, 800, 900), days, strict=True):
        catalog.fee(acme, amount, day)
    database = client.database or ""
    done = bill(warehouse, database, tmp_path, "--pending")
    assert done.returncode == 0, done.stderr
    assert "Warning:" not in done.stderr  # Dagster's notes on its beta parameters stay out
    # Days at most 7 empty days apart share a run; the months between are not visited.
    assert "2023-11-05 ok: 1 fees, 1 finalized" in done.stderr
    assert "2024-02-01..2024-02-09 ok: 2 fees, 2 finalized" in done.stderr
    assert "2024-02-20 ok: 1 fees, 1 finalized" in done.stderr
    totals = client.query(
        "SELECT billing_date, total_amount_cents FROM invoices FINAL ORDER BY billing_date"
    ).result_rows
    assert totals == list(zip(days, (500, 700, 800, 900), strict=True))
    again = bill(warehouse, database, tmp_path, "--pending")
    assert again.returncode == 0 and "no billing day pending" in again.stderr
    mixed = bill(warehouse, database, tmp_path, "--pending", "--date", "2024-02-01")
    assert mixed.returncode == 2 and "--pending takes no --date" in mixed.stderr


def test_bad_dates_are_refused(warehouse: Warehouse, tmp_path: Path) -> None:
    wrong = bill(warehouse, "unused", tmp_path, "--from", "2024-02-01", "--to", "2024-01-01")
    assert wrong.returncode == 2 and "--to is before --from" in wrong.stderr
    missing = bill(warehouse, "unused", tmp_path)
    assert missing.returncode == 2
