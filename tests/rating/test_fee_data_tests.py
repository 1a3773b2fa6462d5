"""A fee id stored twice fails the fees' data tests.

fct_fees is written without the engine's replacing pass on insert (fct_fees.sql), and invoicing
reads it without FINAL: a fee a run wrote twice would be billed twice. The data tests of the fees
the last run wrote are what catches it. Here one of them is stored again under another billing
date (another sorting key, so no merge can collapse the copy while the tests read it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.analytics.dbt_runner import run_dbt
from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog

AS_OF = "2024-02-01T00:00:00"
COPY_OF_A_FEE = """
INSERT INTO fct_fees
SELECT * REPLACE (billing_date + 1 AS billing_date)
FROM fct_fees
WHERE organization_id = {organization:UUID} AND rated_at = (SELECT max(rated_at) FROM fct_fees)
LIMIT 1
"""
# The fee stored twice, and its copy's billing date (the later one).
STORED_TWICE = """
SELECT fee_id, max(billing_date) FROM fct_fees WHERE organization_id = {organization:UUID}
GROUP BY fee_id HAVING count() > 1
"""


def fee_data_tests(warehouse: Warehouse, target_path: Path) -> subprocess.CompletedProcess[str]:
    """dbt's data tests of fct_fees, which `meterhouse rate run` runs after rating (not its
    unit tests)."""
    arguments = ["test", "--select", "fct_fees", "--exclude-resource-type", "unit_test"]
    return run_dbt(arguments, warehouse.env, target_path, AS_OF)


def test_a_fee_stored_twice_fails_the_fees_data_tests(
    warehouse: Warehouse, rater: Rater, tmp_path: Path
) -> None:
    client = warehouse.client()
    catalog = Catalog(client)
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    starter = catalog.plan("starter")
    catalog.charge(starter, calls, "standard", {"amount": "0.5"})
    catalog.subscription("s1", customer, starter, "2024-01-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-01-05T10:00:00"}] * 2)
    rater.run("--no-tests", "--as-of", AS_OF)

    organization = {"organization": catalog.organization_id}
    client.command(COPY_OF_A_FEE, parameters=organization)
    try:
        result = fee_data_tests(warehouse, tmp_path / "dbt_target")
    finally:
        copies = client.query(STORED_TWICE, parameters=organization).result_rows
        for fee_id, copy_billing_date in copies:
            client.command(
                "DELETE FROM fct_fees WHERE fee_id = {fee_id:UUID} AND billing_date = {day:Date}",
                parameters={"fee_id": fee_id, "day": copy_billing_date},
            )

    assert len(copies) == 1
    assert result.returncode != 0
    # Exactly the two checks of stored fee ids fail, each on the one fee stored twice.
    failed = sorted(re.findall(r" FAIL (\d+) (\S+)", result.stdout))
    assert failed == [
        ("1", "assert_fees_of_the_last_run_are_stored_once"),
        ("1", "unique_fct_fees_fee_id"),
    ], result.stdout
