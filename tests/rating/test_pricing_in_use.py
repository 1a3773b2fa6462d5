"""The per-run rating tables compile in only the charge models and rounding precisions of the
catalog as dbt runs them: a model or precision first used after a run is priced by the next.
The catalog read is warehouse-wide, so this runs in a database of its own, whose first run has
only a standard arrears charge and no pay-in-advance one."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog
from tests.rating.conftest import FeeRow, fees_of, january_charge_fees
from warehouse.migrate import migrate


@dataclass
class Runs:
    s1: uuid.UUID
    s2: uuid.UUID
    first: list[FeeRow]  # fees after the first run
    second: list[FeeRow]  # fees after the second


@pytest.fixture(scope="module")
def runs(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Fees after a first run (standard charge only), then after a plain run once a graduated
    arrears charge with metric rounding and a package pay-in-advance charge were added."""
    database = f"mh_pricing_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    own = replace(warehouse, database=database)
    rater = Rater(own, tmp_path_factory.mktemp("dbt_target"))
    catalog = Catalog(own.client())
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    starter = catalog.plan("starter")
    catalog.charge(starter, calls, "standard", {"amount": "0.5"})
    s1 = catalog.subscription("s1", customer, starter, "2024-01-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-01-05T10:00:00"}])
    rater.run("--no-tests", "--as-of", "2024-02-01T00:00:00")
    first = fees_of(catalog.client, catalog.organization_id)

    seats = catalog.metric("seats", "sum_agg", "n", rounding_function="round", rounding_precision=1)
    growth = catalog.plan("growth")
    graduated = {
        "graduated_ranges": [
            {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
            {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
        ]
    }
    catalog.charge(growth, seats, "graduated", graduated)
    package = {"amount": "3", "package_size": 2, "free_units": 0}
    catalog.charge(growth, calls, "package", package, pay_in_advance=True)
    s2 = catalog.subscription("s2", customer, growth, "2024-01-01")
    catalog.events(
        "s2",
        "seats",
        [
            {"timestamp": "2024-01-10T10:00:00", "properties": {"n": "4.26"}},
            {"timestamp": "2024-01-11T10:00:00", "properties": {"n": "8"}},
        ],
    )
    catalog.events(
        "s2",
        "calls",
        [{"timestamp": f"2024-01-2{day}T10:00:00"} for day in range(3)],
    )
    rater.run("--no-tests", "--as-of", "2024-02-02T00:00:00")
    return Runs(s1, s2, first, fees_of(catalog.client, catalog.organization_id))


def test_the_first_run_prices_its_standard_charge(runs: Runs) -> None:
    [calls] = january_charge_fees(runs.first, runs.s1, "calls")
    assert calls["amount_cents"] == 50  # 1 call x 0.5


def test_a_charge_model_and_precision_added_after_a_run_are_priced_by_the_next(
    runs: Runs,
) -> None:
    [seats] = january_charge_fees(runs.second, runs.s2, "seats")
    # 4.26 + 8 = 12.26, rounded at 1 decimal: 12.3 units. Graduated: 10 x 1 in the first tier,
    # then 12.3 - 11 + 1 = 2.3 x 0.5 = 1.15 in the second: 11.15.
    assert seats["units"] == Decimal("12.3")
    assert seats["amount"] == Decimal("11.15")
    assert seats["amount_cents"] == 1115


def test_a_pay_in_advance_charge_model_added_after_a_run_is_priced_by_the_next(
    runs: Runs,
) -> None:
    fees = sorted(
        january_charge_fees(runs.second, runs.s2, "calls"), key=lambda fee: fee["first_event_at"]
    )
    # Packages of 2 at 3: the 1st call opens a package (3), the 2nd fills it (0), the 3rd opens
    # a second one (3).
    assert [fee["amount_cents"] for fee in fees] == [300, 0, 300]
    assert all(fee["source_transaction_id"] for fee in fees)  # one fee per event
