"""Without charge filters, groups, expressions, proration or ordered events in the catalog, the
per-run usage places each event once per metric and period and gives the metric's usage to every
arrears charge of the plan on it (usage_by_metric), instead of once per charge. The catalog read
is warehouse-wide, so this runs in a database of its own whose catalog uses none of them: every
aggregation type that path aggregates, and two charges on one metric."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog
from tests.rating.conftest import FeeRow, fees_of, january_charge_fees
from warehouse.migrate import migrate


@dataclass
class Rated:
    fees: list[FeeRow]
    subscription: uuid.UUID
    usage_sql: str  # int_rating_charge_usage as the run compiled it


@pytest.fixture(scope="module")
def rated(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Rated:
    database = f"mh_by_metric_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    own = replace(warehouse, database=database)
    target = tmp_path_factory.mktemp("dbt_target")
    catalog = Catalog(own.client())
    customer = catalog.customer("c1")
    plan = catalog.plan("metered")
    storage = catalog.metric("storage", "sum_agg", "gb")
    catalog.charge(plan, storage, "standard", {"amount": "0.5"}, invoice_display_name="Storage")
    catalog.charge(
        plan,
        storage,
        "graduated",
        {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 11, "to_value": None, "per_unit_amount": "0.1", "flat_amount": "2"},
            ]
        },
        invoice_display_name="Storage tiers",
    )
    calls = catalog.metric("calls", "count_agg")
    catalog.charge(plan, calls, "standard", {"amount": "0.25"})
    level = catalog.metric("level", "latest_agg", "n")
    catalog.charge(plan, level, "standard", {"amount": "3"})
    peak = catalog.metric("peak", "max_agg", "n")
    catalog.charge(plan, peak, "standard", {"amount": "2"})
    users = catalog.metric("users", "unique_count_agg", "user")
    catalog.charge(plan, users, "standard", {"amount": "5"})
    subscription = catalog.subscription("s1", customer, plan, "2024-01-01")
    catalog.events(
        "s1",
        "storage",
        [
            {"timestamp": "2024-01-03T10:00:00", "properties": {"gb": "12"}},
            {"timestamp": "2024-01-04T10:00:00", "properties": {"gb": "2.5"}},
            # February's: not in January's units.
            {"timestamp": "2024-02-01T00:00:00", "properties": {"gb": "100"}},
        ],
    )
    catalog.events("s1", "calls", [{"timestamp": "2024-01-05T10:00:00"}] * 4)
    catalog.events(
        "s1",
        "level",
        [
            {"timestamp": "2024-01-05T10:00:00", "properties": {"n": "7"}},
            {"timestamp": "2024-01-09T10:00:00", "properties": {"n": "4"}},
        ],
    )
    catalog.events(
        "s1",
        "peak",
        [
            {"timestamp": "2024-01-05T10:00:00", "properties": {"n": "6"}},
            {"timestamp": "2024-01-06T10:00:00", "properties": {"n": "9"}},
            {"timestamp": "2024-01-07T10:00:00", "properties": {"n": "1"}},
        ],
    )
    catalog.events(
        "s1",
        "users",
        [
            {"timestamp": "2024-01-05T10:00:00", "properties": {"user": "u1"}},
            {"timestamp": "2024-01-06T10:00:00", "properties": {"user": "u2"}},
            {"timestamp": "2024-01-07T10:00:00", "properties": {"user": "u3"}},
            {
                "timestamp": "2024-01-08T10:00:00",
                "properties": {"user": "u2", "operation_type": "remove"},
            },
        ],
    )
    Rater(own, target).run("--no-tests", "--as-of", "2024-02-01T12:00:00")
    [compiled] = Path(target, "compiled").rglob("int_rating_charge_usage.sql")
    fees = fees_of(catalog.client, catalog.organization_id)
    return Rated(fees, subscription, compiled.read_text())


def test_the_usage_is_aggregated_per_metric(rated: Rated) -> None:
    assert "per_metric as (" in rated.usage_sql


def test_each_charge_on_a_metric_gets_its_usage(rated: Rated) -> None:
    fees = {
        fee["invoice_display_name"]: fee
        for fee in january_charge_fees(rated.fees, rated.subscription, "storage")
    }
    # 12 + 2.5 = 14.5 GB (February's 100 GB left out), 2 events on both charges.
    assert {name: fee["units"] for name, fee in fees.items()} == {
        "Storage": Decimal("14.5"),
        "Storage tiers": Decimal("14.5"),
    }
    assert {fee["events_count"] for fee in fees.values()} == {2}
    # Standard: 14.5 x 0.5 = 7.25. Graduated: 10 x 1 + 4.5 x 0.1 + 2 (second tier's flat) = 12.45.
    assert {name: fee["amount_cents"] for name, fee in fees.items()} == {
        "Storage": 725,
        "Storage tiers": 1245,
    }


def amount_cents(rated: Rated, code: str) -> int:
    [fee] = january_charge_fees(rated.fees, rated.subscription, code)
    return int(fee["amount_cents"])


def test_every_aggregation_type_of_the_per_metric_usage(rated: Rated) -> None:
    assert amount_cents(rated, "calls") == 100  # 4 calls x 0.25
    assert amount_cents(rated, "level") == 1200  # latest 4 x 3
    assert amount_cents(rated, "peak") == 1800  # max 9 x 2
    assert amount_cents(rated, "users") == 1000  # u1, u3 (u2 removed) x 5
