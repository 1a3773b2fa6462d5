"""The per-run usage rating compiles in only the usage features of the catalog as dbt runs it
(aggregation types, charge filters, grouped_by, metric expressions, prorated charges, the
metrics' fields), and so does the per-run pay-in-advance rating for its own charges: a feature
first used after a run is rated by the next, and the query compiled before it fails rather than
rate without it. The catalog read is warehouse-wide, so this runs in a database of its own, whose
first run has a single count charge and a single pay-in-advance sum charge."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog
from tests.rating.conftest import FeeRow, fees_of, january_charge_fees
from warehouse.migrate import migrate


@dataclass
class Runs:
    client: Client
    s1: uuid.UUID
    s2: uuid.UUID
    first: list[FeeRow]  # fees after the first run
    second: list[FeeRow]  # fees after the second
    stale_usage_sql: str  # the usage query compiled by the first run
    stale_in_advance_sql: str  # the pay-in-advance pricing query compiled by the first run
    stale_in_advance_events_sql: str  # the pay-in-advance placement query compiled by the first run


@pytest.fixture(scope="module")
def runs(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Fees after a first run (one count charge, one pay-in-advance sum charge), then after a
    plain run once charges using a filter, a grouped_by, an expression, the latest and
    unique-count aggregations and a prorated charge were added, and pay-in-advance charges using
    the unique-count and max aggregations and a filter."""
    database = f"mh_usage_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    own = replace(warehouse, database=database)
    target = tmp_path_factory.mktemp("dbt_target")
    rater = Rater(own, target)
    catalog = Catalog(own.client())
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    starter = catalog.plan("starter")
    catalog.charge(starter, calls, "standard", {"amount": "0.5"})
    uploads = catalog.metric("uploads", "sum_agg", "mb")
    catalog.charge(starter, uploads, "standard", {"amount": "0.1"}, pay_in_advance=True)
    s1 = catalog.subscription("s1", customer, starter, "2024-01-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-01-05T10:00:00"}] * 3)
    catalog.events(
        "s1",
        "uploads",
        [
            {"timestamp": "2024-01-05T10:00:00", "properties": {"mb": "10"}},
            {"timestamp": "2024-01-06T10:00:00", "properties": {"mb": "5"}},
        ],
    )
    rater.run("--no-tests", "--as-of", "2024-02-01T00:00:00")
    first = fees_of(catalog.client, catalog.organization_id)
    [compiled] = Path(target, "compiled").rglob("int_rating_charge_usage.sql")
    stale_usage_sql = compiled.read_text()
    [compiled] = Path(target, "compiled").rglob("int_rating_pay_in_advance_fees.sql")
    stale_in_advance_sql = compiled.read_text()
    [compiled] = Path(target, "compiled").rglob("int_rating_pay_in_advance_events.sql")
    stale_in_advance_events_sql = compiled.read_text()

    growth = catalog.plan("growth")
    storage = catalog.metric("storage", "sum_agg", "gb")
    storage_charge = catalog.charge(growth, storage, "standard", {"amount": "1"})
    catalog.charge_filter(storage_charge, growth, {"region": ["eu"]}, {"amount": "2"})
    api = catalog.metric("api", "count_agg")
    catalog.charge(growth, api, "standard", {"amount": "0.5", "grouped_by": ["team"]})
    hours = catalog.metric(
        "hours",
        "sum_agg",
        "hours",
        expression="round((event.properties.ended_at - event.properties.started_at) / 3600, 2)",
    )
    catalog.charge(growth, hours, "standard", {"amount": "2"})
    level = catalog.metric("level", "latest_agg", "n")
    catalog.charge(growth, level, "standard", {"amount": "1"})
    users = catalog.metric("users", "unique_count_agg", "user")
    catalog.charge(growth, users, "standard", {"amount": "1"})
    seats = catalog.metric("seats", "sum_agg", "n", recurring=True)
    catalog.charge(growth, seats, "standard", {"amount": "1"}, prorated=True)
    viewers = catalog.metric("viewers", "unique_count_agg", "viewer")
    catalog.charge(growth, viewers, "standard", {"amount": "2"}, pay_in_advance=True)
    peak = catalog.metric("peak", "max_agg", "n")
    catalog.charge(growth, peak, "standard", {"amount": "1"}, pay_in_advance=True)
    egress = catalog.metric("egress", "sum_agg", "gb")
    egress_charge = catalog.charge(growth, egress, "standard", {"amount": "1"}, pay_in_advance=True)
    catalog.charge_filter(egress_charge, growth, {"region": ["eu"]}, {"amount": "3"})
    s2 = catalog.subscription("s2", customer, growth, "2024-01-01")
    catalog.events(
        "s2",
        "viewers",
        [
            {"timestamp": f"2024-01-1{day}T10:00:00", "properties": {"viewer": viewer}}
            for day, viewer in ((0, "v1"), (1, "v2"), (2, "v1"))
        ],
    )
    catalog.events(
        "s2",
        "peak",
        [
            {"timestamp": f"2024-01-1{day}T10:00:00", "properties": {"n": n}}
            for day, n in ((0, "4"), (1, "2"), (2, "7"))
        ],
    )
    catalog.events(
        "s2",
        "egress",
        [
            {"timestamp": "2024-01-10T10:00:00", "properties": {"gb": "2", "region": "eu"}},
            {"timestamp": "2024-01-11T10:00:00", "properties": {"gb": "5", "region": "us"}},
        ],
    )
    catalog.events(
        "s2",
        "storage",
        [
            {"timestamp": "2024-01-10T10:00:00", "properties": {"gb": "3", "region": "eu"}},
            {"timestamp": "2024-01-11T10:00:00", "properties": {"gb": "4", "region": "us"}},
        ],
    )
    catalog.events(
        "s2",
        "api",
        [
            {"timestamp": "2024-01-10T10:00:00", "properties": {"team": "a"}},
            {"timestamp": "2024-01-11T10:00:00", "properties": {"team": "a"}},
            {"timestamp": "2024-01-12T10:00:00", "properties": {"team": "b"}},
        ],
    )
    catalog.events(
        "s2",
        "hours",
        [{"timestamp": "2024-01-10T10:00:00", "properties": {"started_at": 0, "ended_at": 7200}}],
    )
    catalog.events(
        "s2",
        "level",
        [
            {"timestamp": "2024-01-10T10:00:00", "properties": {"n": "5"}},
            {"timestamp": "2024-01-20T10:00:00", "properties": {"n": "3"}},
        ],
    )
    catalog.events(
        "s2",
        "users",
        [
            {"timestamp": "2024-01-10T10:00:00", "properties": {"user": "u1"}},
            {"timestamp": "2024-01-11T10:00:00", "properties": {"user": "u2"}},
            {
                "timestamp": "2024-01-12T10:00:00",
                "properties": {"user": "u1", "operation_type": "remove"},
            },
        ],
    )
    catalog.events("s2", "seats", [{"timestamp": "2024-01-17T10:00:00", "properties": {"n": "31"}}])
    rater.run("--no-tests", "--as-of", "2024-02-02T00:00:00")
    second = fees_of(catalog.client, catalog.organization_id)
    return Runs(
        catalog.client,
        s1,
        s2,
        first,
        second,
        stale_usage_sql,
        stale_in_advance_sql,
        stale_in_advance_events_sql,
    )


def test_the_first_run_rates_its_count_charge(runs: Runs) -> None:
    [calls] = january_charge_fees(runs.first, runs.s1, "calls")
    assert calls["amount_cents"] == 150  # 3 calls x 0.5


def in_advance_amounts(fees: list[FeeRow], subscription: uuid.UUID, code: str) -> list[int]:
    """The amounts of a pay-in-advance charge's January fees, in event order."""
    in_advance = [
        fee for fee in january_charge_fees(fees, subscription, code) if fee["pay_in_advance"]
    ]
    return [fee["amount_cents"] for fee in sorted(in_advance, key=lambda fee: fee["billing_date"])]


def test_the_first_run_rates_its_pay_in_advance_sum_charge(runs: Runs) -> None:
    # 10 MB x 0.1 = 1.00, then 5 MB x 0.1 = 0.50.
    assert in_advance_amounts(runs.first, runs.s1, "uploads") == [100, 50]


def test_pay_in_advance_aggregations_added_after_a_run_are_rated_by_the_next(runs: Runs) -> None:
    # Unique count: v1 and v2 are new (1 x 2 = 2.00 each), v1 again adds nothing.
    assert in_advance_amounts(runs.second, runs.s2, "viewers") == [200, 200, 0]
    # Max: the peak goes 4, 4, 7: 4 x 1 = 4.00, nothing, then 7 - 4 = 3 x 1 = 3.00.
    assert in_advance_amounts(runs.second, runs.s2, "peak") == [400, 0, 300]


def test_a_pay_in_advance_filter_added_after_a_run_is_matched_by_the_next(runs: Runs) -> None:
    fees = january_charge_fees(runs.second, runs.s2, "egress")
    by_bucket = {fee["charge_filter_id"] is None: fee["amount_cents"] for fee in fees}
    # eu: 2 GB x 3 = 6.00; the default price: the us event's 5 GB x 1 = 5.00.
    assert by_bucket == {False: 600, True: 500}


def test_a_charge_filter_added_after_a_run_is_matched_by_the_next(runs: Runs) -> None:
    fees = january_charge_fees(runs.second, runs.s2, "storage")
    by_bucket = {fee["charge_filter_id"] is None: fee["amount_cents"] for fee in fees}
    # eu: 3 GB x 2 = 6.00; the default price: the us event's 4 GB x 1 = 4.00.
    assert by_bucket == {False: 600, True: 400}


def test_a_grouped_by_added_after_a_run_splits_the_next(runs: Runs) -> None:
    fees = january_charge_fees(runs.second, runs.s2, "api")
    # Team a: 2 calls x 0.5 = 1.00; team b: 1 x 0.5 = 0.50.
    assert sorted((fee["grouped_by"].get("team"), fee["amount_cents"]) for fee in fees) == [
        ("a", 100),
        ("b", 50),
    ]


def test_an_expression_added_after_a_run_is_evaluated_by_the_next(runs: Runs) -> None:
    [fee] = january_charge_fees(runs.second, runs.s2, "hours")
    # (7200 - 0) / 3600 = 2 hours x 2 = 4.00.
    assert (fee["units"], fee["amount_cents"]) == (Decimal("2"), 400)


def test_aggregation_types_added_after_a_run_are_aggregated_by_the_next(runs: Runs) -> None:
    [level] = january_charge_fees(runs.second, runs.s2, "level")
    [users] = january_charge_fees(runs.second, runs.s2, "users")
    # Latest: the Jan 20 value 3 x 1 = 3.00. Unique count: u2 only (u1 removed) x 1 = 1.00.
    assert (level["units"], level["amount_cents"]) == (Decimal("3"), 300)
    assert (users["units"], users["amount_cents"]) == (Decimal("1"), 100)


def test_a_prorated_charge_added_after_a_run_is_prorated_by_the_next(runs: Runs) -> None:
    [seats] = january_charge_fees(runs.second, runs.s2, "seats")
    # 31 seats from Jan 17 to 31 (15 days) of 31: 31 x 15 / 31 = 15 units x 1 = 15.00.
    assert (seats["units"], seats["amount_cents"]) == (Decimal("15"), 1500)


def test_a_query_compiled_before_a_feature_was_added_fails_rather_than_ignore_it(
    runs: Runs,
) -> None:
    with pytest.raises(DatabaseError, match="was added to the catalog during the run"):
        runs.client.query(runs.stale_usage_sql)


def test_a_pay_in_advance_pricing_query_compiled_before_a_feature_was_added_fails(
    runs: Runs,
) -> None:
    with pytest.raises(DatabaseError, match="was added to the catalog during the run"):
        runs.client.query(runs.stale_in_advance_sql)


def test_a_pay_in_advance_placement_query_compiled_before_a_feature_was_added_fails(
    runs: Runs,
) -> None:
    with pytest.raises(DatabaseError, match="was added to the catalog during the run"):
        runs.client.query(runs.stale_in_advance_events_sql)
