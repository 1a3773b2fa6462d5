"""End-to-end rating scenarios from billing-semantics.md: a catalog and events per organization,
one `meterhouse rate run` over all of them, and every fee checked in cents derived by hand.

All scenarios are rated as of 2024-07-01T00:00:00Z, so every period that ends by 2024-06-30 is
closed and billed.

Scenarios state their inputs as a user does (``@api_scenario``, ``ApiCatalog``): customers,
metrics, plans, charges, charge filters and subscriptions created through the billing API with
the official Lago client, subscriptions started in the past with ``subscription_at``, events sent
through the ingest routes' batch endpoint. Three scenarios write the warehouse tables directly
(``@scenario``, ``Catalog``) because their history has no form in Lago's API: a subscription is
terminated (``DELETE``) or changes plan (``POST`` with another plan) at the instant of the request,
and Lago refuses an ``ending_at`` dated before tomorrow (``invalid_date``), so no past end can be
stated:

- ``termination``: a subscription terminated on 2024-04-10;
- ``charge_minimum_on_termination``: a subscription terminated on 2023-02-25;
- ``upgrade``: a plan change on 2024-04-16, the old subscription terminated and the new one
  started at that instant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.models import MinimumCommitment, Plan, Tax

from tests.conftest import Rater, Warehouse
from tests.rating.api_catalog import ApiCatalog
from tests.rating.catalog import Catalog
from tests.rating.conftest import FeeRow, fees_of

AS_OF = "2024-07-01T00:00:00"

Scenario = Callable[[Catalog], None]
SCENARIOS: dict[str, Scenario] = {}
ApiScenario = Callable[[ApiCatalog], None]
API_SCENARIOS: dict[str, ApiScenario] = {}


def scenario(function: Scenario) -> Scenario:
    """A scenario whose inputs are written straight into the warehouse tables."""
    SCENARIOS[function.__name__] = function
    return function


def api_scenario(function: ApiScenario) -> ApiScenario:
    """A scenario whose inputs go through the billing and ingest APIs."""
    API_SCENARIOS[function.__name__] = function
    return function


@dataclass
class Rated:
    client: Client
    organizations: dict[str, uuid.UUID]

    def fees(self, name: str, where: str = "1") -> list[FeeRow]:
        return fees_of(self.client, self.organizations[name], where)

    def charge_fees(self, name: str, metric: str) -> list[FeeRow]:
        return self.fees(name, f"fee_type = 'charge' AND billable_metric_code = '{metric}'")

    def subscription_fees(self, name: str) -> list[FeeRow]:
        return self.fees(name, "fee_type = 'subscription'")


@pytest.fixture(scope="module")
def rated(warehouse: Warehouse, rater: Rater, admin_client: Client, billing_api: str) -> Rated:
    client = warehouse.client()
    organizations = {}
    for name, seed_through_api in API_SCENARIOS.items():
        api_catalog = ApiCatalog.for_new_organization(admin_client, billing_api)
        seed_through_api(api_catalog)
        organizations[name] = api_catalog.organization_id
    for name, seed in SCENARIOS.items():
        catalog = Catalog(client)
        seed(catalog)
        organizations[name] = catalog.organization_id
    rater.run("--as-of", AS_OF, "--full-refresh")
    return Rated(client, organizations)


def cents(fees: list[FeeRow]) -> list[int]:
    return [fee["amount_cents"] for fee in fees]


# --- charge models -----------------------------------------------------------------------------


@api_scenario
def standard_with_zero_usage(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("basic", amount_cents=10000)
    catalog.charge(plan, calls, "standard", {"amount": "0.5"})
    catalog.subscription("s1", customer, plan, "2024-03-01")
    catalog.events("s1", "calls", [{"timestamp": f"2024-03-0{day}T10:00:00"} for day in (1, 2, 3)])


def test_standard_charge_and_zero_usage_fees_are_billed(rated: Rated) -> None:
    # March: 3 calls x 0.50 = 1.50; April-June: no usage, zero fees still present.
    assert cents(rated.charge_fees("standard_with_zero_usage", "calls")) == [150, 0, 0, 0]
    assert cents(rated.subscription_fees("standard_with_zero_usage")) == [10000] * 4
    march = rated.charge_fees("standard_with_zero_usage", "calls")[0]
    assert march["units"] == Decimal(3)
    assert march["events_count"] == 3
    assert march["billing_date"] == date(2024, 4, 1)
    assert march["period_from"] == datetime(2024, 3, 1)
    assert march["period_to"] == datetime(2024, 3, 31, 23, 59, 59, 999000)


GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
        {"from_value": 11, "to_value": 20, "per_unit_amount": "0.5", "flat_amount": "3"},
        {"from_value": 21, "to_value": None, "per_unit_amount": "0.1", "flat_amount": "0"},
    ]
}


@api_scenario
def graduated_tier_boundaries(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    storage = catalog.metric("storage", "sum_agg", "gb")
    plan = catalog.plan("tiers")
    catalog.charge(plan, storage, "graduated", GRADUATED)
    catalog.subscription("s1", customer, plan, "2024-03-01")
    for month, total in (("03", "10"), ("04", "15"), ("05", "25")):
        catalog.events(
            "s1", "storage", [{"timestamp": f"2024-{month}-10", "properties": {"gb": total}}]
        )


def test_graduated_counts_inclusive_integer_tiers(rated: Rated) -> None:
    # 10 units: 10 x 1 + 2 = 12.00; 15: 12 + (15 - 11 + 1) x 0.5 + 3 = 17.50;
    # 25: 12 + 10 x 0.5 + 3 + (25 - 21 + 1) x 0.1 = 20.50; 0 units: first tier's flat fee 2.00.
    assert cents(rated.charge_fees("graduated_tier_boundaries", "storage")) == [
        1200,
        1750,
        2050,
        200,
    ]


@api_scenario
def volume_fractional_units(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    storage = catalog.metric("storage", "sum_agg", "gb")
    plan = catalog.plan("volume")
    ranges = [
        {"from_value": 0, "to_value": 100, "per_unit_amount": "2", "flat_amount": "1"},
        {"from_value": 101, "to_value": 200, "per_unit_amount": "1", "flat_amount": "5"},
        {"from_value": 201, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
    ]
    catalog.charge(plan, storage, "volume", {"volume_ranges": ranges})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events("s1", "storage", [{"timestamp": "2024-06-10", "properties": {"gb": "100.5"}}])


def test_volume_picks_the_tier_of_the_rounded_up_units(rated: Rated) -> None:
    # ceil(100.5) = 101 falls in 101-200: 100.5 x 1 + 5 = 105.50.
    assert cents(rated.charge_fees("volume_fractional_units", "storage")) == [10550]


@api_scenario
def package_started_package(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "sum_agg", "n")
    plan = catalog.plan("package")
    props = {"amount": "5", "package_size": 10, "free_units": 3}
    catalog.charge(plan, calls, "package", props)
    catalog.subscription("s1", customer, plan, "2024-05-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-05-10", "properties": {"n": "25"}}])
    catalog.events("s1", "calls", [{"timestamp": "2024-06-10", "properties": {"n": "2"}}])


def test_package_bills_whole_started_packages_after_free_units(rated: Rated) -> None:
    # May: ceil((25 - 3) / 10) = 3 packages x 5 = 15.00; June: 2 units all free.
    assert cents(rated.charge_fees("package_started_package", "calls")) == [1500, 0]


@api_scenario
def percentage_free_events(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    payments = catalog.metric("payments", "sum_agg", "amount")
    plan = catalog.plan("pct")
    props = {"rate": "1", "fixed_amount": "0.5", "free_units_per_events": 2}
    catalog.charge(plan, payments, "percentage", props)
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "payments",
        [
            {"timestamp": f"2024-06-0{day}", "properties": {"amount": value}}
            for day, value in ((1, "100"), (2, "200"), (3, "300"))
        ],
    )


def test_percentage_frees_the_first_events(rated: Rated) -> None:
    # Running totals 100, 300, 600; 2 free events free 300: (600 - 300) x 1% = 3.00,
    # plus 1 paid event x 0.50 = 3.50.
    assert cents(rated.charge_fees("percentage_free_events", "payments")) == [350]


@api_scenario
def percentage_transaction_min_max(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    payments = catalog.metric("payments", "sum_agg", "amount")
    plan = catalog.plan("pct-minmax")
    props = {
        "rate": "10",
        "fixed_amount": "0",
        "per_transaction_min_amount": "1",
        "per_transaction_max_amount": "5",
    }
    catalog.charge(plan, payments, "percentage", props)
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "payments",
        [
            {"timestamp": f"2024-06-0{day}", "properties": {"amount": value}}
            for day, value in ((1, "5"), (2, "30"), (3, "100"))
        ],
    )


def test_percentage_clamps_each_transaction(rated: Rated) -> None:
    # 0.50 raised to 1, 3.00 kept, 10.00 capped to 5: 9.00.
    assert cents(rated.charge_fees("percentage_transaction_min_max", "payments")) == [900]


@api_scenario
def dynamic_prices(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    tokens = catalog.metric("tokens", "sum_agg", "n")
    plan = catalog.plan("dynamic")
    catalog.charge(plan, tokens, "dynamic", {})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "tokens",
        [
            {
                "timestamp": "2024-06-02",
                "properties": {"n": "3"},
                "precise_total_amount_cents": Decimal("1234.5"),
            },
            {
                "timestamp": "2024-06-03",
                "properties": {"n": "1"},
                "precise_total_amount_cents": Decimal("100"),
            },
        ],
    )


def test_dynamic_sums_the_events_own_amounts(rated: Rated) -> None:
    # (1234.5 + 100) / 100 = 13.345, rounded half-up once: 13.35.
    fee = rated.charge_fees("dynamic_prices", "tokens")[0]
    assert fee["amount"] == Decimal("13.345")
    assert fee["amount_cents"] == 1335


@api_scenario
def grouped_rounding(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    seats = catalog.metric("seats", "count_agg")
    plain = catalog.metric("seats_plain", "count_agg")
    plan = catalog.plan("seats")
    catalog.charge(plan, seats, "standard", {"amount": "14.516", "grouped_by": ["seat"]})
    catalog.charge(plan, plain, "standard", {"amount": "14.516"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    for code in ("seats", "seats_plain"):
        catalog.events(
            "s1",
            code,
            [{"timestamp": "2024-06-05", "properties": {"seat": f"s{n}"}} for n in range(5)],
        )


def test_each_group_is_rounded_on_its_own(rated: Rated) -> None:
    grouped = rated.charge_fees("grouped_rounding", "seats")
    assert cents(grouped) == [1452] * 5
    assert sorted(fee["grouped_by"]["seat"] for fee in grouped) == [f"s{n}" for n in range(5)]
    assert cents(rated.charge_fees("grouped_rounding", "seats_plain")) == [7258]


# --- aggregations ------------------------------------------------------------------------------


@api_scenario
def aggregations(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("aggs")
    metrics = {
        "sum_m": catalog.metric("sum_m", "sum_agg", "v"),
        "max_m": catalog.metric("max_m", "max_agg", "v"),
        "latest_m": catalog.metric("latest_m", "latest_agg", "v"),
        "unique_m": catalog.metric("unique_m", "unique_count_agg", "user"),
        "rounded_m": catalog.metric(
            "rounded_m", "sum_agg", "v", rounding_function="round", rounding_precision=-2
        ),
    }
    for metric in metrics.values():
        catalog.charge(plan, metric, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    values = [
        ("2024-06-02", "4"),
        ("2024-06-03", "oops"),
        ("2024-06-04", "7.5"),
        ("2024-06-05", "-2"),
    ]
    for code in ("sum_m", "max_m", "latest_m"):
        catalog.events("s1", code, [{"timestamp": ts, "properties": {"v": v}} for ts, v in values])
    catalog.events(
        "s1",
        "unique_m",
        [
            {"timestamp": "2024-06-02", "properties": {"user": "a"}},
            {"timestamp": "2024-06-03", "properties": {"user": "b"}},
            {"timestamp": "2024-06-04", "properties": {"user": "a"}},
            {"timestamp": "2024-06-05", "properties": {"user": "b", "operation_type": "remove"}},
            {"timestamp": "2024-06-06", "properties": {"user": "c"}},
        ],
    )
    catalog.events("s1", "rounded_m", [{"timestamp": "2024-06-02", "properties": {"v": "123.456"}}])


def test_basic_aggregations(rated: Rated) -> None:
    units = {
        code: rated.charge_fees("aggregations", code)[0]["units"]
        for code in ("sum_m", "max_m", "latest_m", "unique_m", "rounded_m")
    }
    assert units == {
        "sum_m": Decimal("9.5"),  # 4 + 7.5 - 2, "oops" ignored
        "max_m": Decimal("7.5"),
        "latest_m": Decimal(0),  # last value -2 turns into 0
        "unique_m": Decimal(2),  # a and c; b was removed
        "rounded_m": Decimal(100),  # 123.456 at precision -2
    }


@api_scenario
def weighted_sum(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    storage = catalog.metric("gb_held", "weighted_sum_agg", "gb")
    plan = catalog.plan("weighted")
    catalog.charge(plan, storage, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-03-05")
    catalog.subscription("s2", customer, plan, "2024-03-01")
    catalog.events("s1", "gb_held", [{"timestamp": "2024-03-05", "properties": {"gb": "2500"}}])
    catalog.events(
        "s2",
        "gb_held",
        [
            {"timestamp": "2024-03-01", "properties": {"gb": "3100"}},
            {"timestamp": "2024-03-21", "properties": {"gb": "-1550"}},
        ],
    )


def test_weighted_sum_weighs_levels_by_time_over_the_full_period(rated: Rated) -> None:
    fees = rated.charge_fees("weighted_sum", "gb_held")
    march = {fee["external_subscription_id"]: fee for fee in fees if fee["period_from"].month == 3}
    # 2500 held from March 5 to 31 (27 days) over the full 31 days: 2177.419...
    assert march["s1"]["units"] == Decimal("2177.419354838709")
    assert march["s1"]["amount_cents"] == 217742
    # 3100 for 20 days then 1550 for 11 days: (62000 + 17050) / 31 = 2550.
    assert march["s2"]["units"] == Decimal(2550)


# --- recurring metrics, proration, expressions ------------------------------------------------


@api_scenario
def recurring_sum(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("recurring")
    for code, recurring in (("gb_recurring", True), ("gb_metered", False)):
        metric = catalog.metric(code, "sum_agg", "gb", recurring=recurring)
        catalog.charge(plan, metric, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-03-01")
    for code in ("gb_recurring", "gb_metered"):
        catalog.events(
            "s1",
            code,
            [
                {"timestamp": "2024-03-10", "properties": {"gb": "5"}},
                {"timestamp": "2024-05-02", "properties": {"gb": "40"}},
                {"timestamp": "2024-05-20", "properties": {"gb": "8"}},
            ],
        )


def test_recurring_metrics_carry_their_value_into_later_periods(rated: Rated) -> None:
    # March 5; April carries 5; May 5 + 40 + 8 = 53; June carries 53. Metered: 5, 0, 48, 0.
    assert cents(rated.charge_fees("recurring_sum", "gb_recurring")) == [500, 500, 5300, 5300]
    assert cents(rated.charge_fees("recurring_sum", "gb_metered")) == [500, 0, 4800, 0]


@api_scenario
def corrected_events(catalog: ApiCatalog) -> None:
    """Re-sent transaction ids: the latest version wins, even when it moves the event to another
    metric (from a metered one to a recurring one) or changes its value."""
    customer = catalog.customer("c1")
    plan = catalog.plan("corrections")
    for code, recurring in (("gb_recurring", True), ("gb_metered", False)):
        metric = catalog.metric(code, "sum_agg", "gb", recurring=recurring)
        catalog.charge(plan, metric, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-03-01")
    first = [
        {"timestamp": "2024-03-10", "properties": {"gb": "5"}, "transaction_id": "tx-a"},
        {"timestamp": "2024-03-12", "properties": {"gb": "7"}, "transaction_id": "tx-b"},
    ]
    catalog.events("s1", "gb_metered", first)
    catalog.events(
        "s1",
        "gb_recurring",
        [{"timestamp": "2024-03-10", "properties": {"gb": "6"}, "transaction_id": "tx-a"}],
    )
    catalog.events(
        "s1",
        "gb_metered",
        [{"timestamp": "2024-03-12", "properties": {"gb": "9"}, "transaction_id": "tx-b"}],
    )


def test_a_resent_transaction_id_is_rated_as_its_latest_version(rated: Rated) -> None:
    # tx-a now belongs to the recurring metric: 6 GB x 1.00 in March, carried into April.
    assert cents(rated.charge_fees("corrected_events", "gb_recurring"))[:2] == [600, 600]
    # March: tx-b's latest 9 GB (not 7, and not tx-a's 5) x 1.00; April: nothing metered.
    assert cents(rated.charge_fees("corrected_events", "gb_metered"))[:2] == [900, 0]


@api_scenario
def prorated_seats(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    seats = catalog.metric("seats", "unique_count_agg", "user", recurring=True)
    plan = catalog.plan("seats")
    catalog.charge(plan, seats, "standard", {"amount": "10"}, prorated=True)
    catalog.subscription("s1", customer, plan, "2024-05-01")
    catalog.events(
        "s1",
        "seats",
        [
            {"timestamp": "2024-05-01T09:00:00", "properties": {"user": "a"}},
            {"timestamp": "2024-05-11T09:00:00", "properties": {"user": "b"}},
            {
                "timestamp": "2024-06-10T09:00:00",
                "properties": {"user": "b", "operation_type": "remove"},
            },
        ],
    )


def test_prorated_charges_count_each_item_for_its_days(rated: Rated) -> None:
    fees = rated.charge_fees("prorated_seats", "seats")
    # May: a for 31 days, b from May 11 (21 days): 1 + 21/31 = 1.677419.. rounded up to 1.67742
    # seats x 10.00 = 16.7742 -> 1677. June (30 days): a carried all month, b until its removal on
    # June 10 (10 days): (30 + 10) / 30 = 1.333.. -> 1.33334 x 10.00 = 13.3334 -> 1333.
    assert [fee["units"] for fee in fees] == [Decimal("1.67742"), Decimal("1.33334")]
    assert cents(fees) == [1677, 1333]


@api_scenario
def recurring_weighted_sum(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    storage = catalog.metric("gb_level", "weighted_sum_agg", "gb", recurring=True)
    plan = catalog.plan("level")
    catalog.charge(plan, storage, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-03-05")
    catalog.events(
        "s1",
        "gb_level",
        [
            {"timestamp": "2024-03-05", "properties": {"gb": "2500"}},
            {"timestamp": "2024-04-04", "properties": {"gb": "-2000"}},
            {"timestamp": "2024-04-06", "properties": {"gb": "-200"}},
        ],
    )


def test_recurring_weighted_sum_starts_from_the_carried_level(rated: Rated) -> None:
    # March: 2500 x 27 / 31 = 2177.419.. -> 217742. April starts at 2500: (2500 x 3 + 500 x 2
    # + 300 x 25) / 30 = 533.333.. -> 53333. May and June hold 300 all month -> 30000.
    fees = rated.charge_fees("recurring_weighted_sum", "gb_level")
    assert cents(fees) == [217742, 53333, 30000, 30000]


@api_scenario
def expression_metric(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    hours = catalog.metric(
        "hours",
        "sum_agg",
        "hours",
        expression="round((event.properties.ended_at - event.properties.started_at) / 3600, 2)",
    )
    plan = catalog.plan("compute")
    catalog.charge(plan, hours, "standard", {"amount": "2"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "hours",
        [
            {"timestamp": "2024-06-02", "properties": {"started_at": 0, "ended_at": 5000}},
            {"timestamp": "2024-06-03", "properties": {"started_at": 100, "ended_at": 7300}},
            # No value without started_at (Lago refuses the event); a stale field is replaced.
            {"timestamp": "2024-06-04", "properties": {"ended_at": 50, "hours": 99}},
        ],
    )


def test_an_expression_computes_the_value_the_metric_reads(rated: Rated) -> None:
    # 5000 s = 1.39 h (rounded to 2 decimals) + 7200 s = 2 h; 3.39 h x 2.00 = 6.78.
    (fee,) = rated.charge_fees("expression_metric", "hours")
    assert (fee["units"], fee["amount_cents"], fee["events_count"]) == (Decimal("3.39"), 678, 3)


@api_scenario
def duplicate_events(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("dedup")
    catalog.charge(plan, calls, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    event = {"timestamp": "2024-06-02", "transaction_id": "tx-1"}
    catalog.events(
        "s1", "calls", [event, event, {"timestamp": "2024-06-03", "transaction_id": "tx-2"}]
    )


def test_a_transaction_id_counts_once(rated: Rated) -> None:
    assert cents(rated.charge_fees("duplicate_events", "calls")) == [200]


@api_scenario
def charge_filters(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg", filters={"region": ["eu", "us"], "tier": ["gold"]})
    plan = catalog.plan("filters")
    charge = catalog.charge(plan, calls, "standard", {"amount": "1"})
    catalog.charge_filter(charge, plan, {"region": ["eu"]}, {"amount": "2"})
    catalog.charge_filter(charge, plan, {"region": ["eu"], "tier": ["gold"]}, {"amount": "5"})
    catalog.charge_filter(charge, plan, {"region": ["__ALL_FILTER_VALUES__"]}, {"amount": "3"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "calls",
        [
            {"timestamp": "2024-06-02", "properties": {"region": "eu"}},
            {"timestamp": "2024-06-02", "properties": {"region": "eu", "tier": "gold"}},
            {"timestamp": "2024-06-02", "properties": {"region": "us"}},
            {"timestamp": "2024-06-02", "properties": {"other": "x"}},
        ],
    )


def test_the_most_specific_filter_wins_and_the_rest_uses_the_default_price(rated: Rated) -> None:
    fees = rated.charge_fees("charge_filters", "calls")
    # eu: 2 (the eu filter and the any-region filter both match 1 key; the older, eu, wins);
    # eu+gold: 5 (2 keys beat 1); us: 3 (any region); no region: default 1.
    assert sorted(cents(fees)) == [100, 200, 300, 500]
    default = [fee for fee in fees if fee["charge_filter_id"] is None]
    assert cents(default) == [100]


# --- subscription fees and proration -----------------------------------------------------------


# The closed monthly periods of a 31st anniversary from 2024-01-31 by July 1st: their first days
# (the last day of shorter months) and billing dates (the day after each period).
MONTH_END_PERIOD_STARTS = [
    date(2024, 1, 31),
    date(2024, 2, 29),
    date(2024, 3, 31),
    date(2024, 4, 30),
    date(2024, 5, 31),
]
MONTH_END_BILLING_DATES = [*MONTH_END_PERIOD_STARTS[1:], date(2024, 6, 30)]


@api_scenario
def month_end_anniversary(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("anniv", amount_cents=3100)
    catalog.subscription("s1", customer, plan, "2024-01-31T09:00:00", billing_time="anniversary")


def test_a_31st_anniversary_falls_on_the_last_day_of_shorter_months(rated: Rated) -> None:
    fees = rated.subscription_fees("month_end_anniversary")
    assert [fee["period_from"].date() for fee in fees] == MONTH_END_PERIOD_STARTS
    assert [fee["billing_date"] for fee in fees] == MONTH_END_BILLING_DATES
    assert cents(fees) == [3100] * 5


@api_scenario
def calendar_proration(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    march = catalog.plan("march", amount_cents=3100)
    leap = catalog.plan("leap", amount_cents=2900)
    catalog.subscription("march", customer, march, "2024-03-05T15:00:00")
    catalog.subscription("leap", customer, leap, "2024-02-15")


def test_partial_first_periods_are_prorated_by_day(rated: Rated) -> None:
    fees = rated.fees(
        "calendar_proration", "fee_type = 'subscription' AND period_from < '2024-03-31'"
    )
    by_subscription = {
        fee["external_subscription_id"]: fee["amount_cents"]
        for fee in fees
        if fee["period_from"].day != 1
    }
    # 5..31 March = 27 of 31 days of 31.00; 15..29 Feb 2024 = 15 of 29 days of 29.00.
    assert by_subscription == {"march": 2700, "leap": 1500}


@api_scenario
def trial(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("trial", amount_cents=3100, trial_period=Decimal(10))
    catalog.subscription("s1", customer, plan, "2024-03-01", trial_ended_at="2024-03-11")
    in_advance = catalog.plan(
        "trial-advance", amount_cents=3100, pay_in_advance=True, trial_period=Decimal(40)
    )
    catalog.subscription("s2", customer, in_advance, "2024-05-01", trial_ended_at="2024-06-10")


def test_trial_days_are_not_billed(rated: Rated) -> None:
    arrears = rated.fees("trial", "fee_type = 'subscription' AND external_subscription_id = 's1'")
    assert cents(arrears)[0] == 2100  # 11..31 March = 21 days
    advance = rated.fees("trial", "fee_type = 'subscription' AND external_subscription_id = 's2'")
    # May is all trial: 0, dated on its first day; June: billed from the trial end,
    # 10..30 June = 21 of 30 days of 31.00 = 21.70, invoiced when the trial ends; July's full
    # fee is due on July 1st, the rating instant.
    assert cents(advance) == [0, 2170, 3100]
    assert advance[1]["billing_date"] == date(2024, 6, 10)


@scenario
def termination(catalog: Catalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("term", amount_cents=3000)
    catalog.subscription("s1", customer, plan, "2024-04-01", terminated_at="2024-04-10T12:00:00")


def test_termination_counts_its_own_day(rated: Rated) -> None:
    fees = rated.subscription_fees("termination")
    assert cents(fees) == [1000]  # 1..10 April = 10 of 30 days of 30.00
    assert fees[0]["billing_date"] == date(2024, 4, 11)


@scenario
def upgrade(catalog: Catalog) -> None:
    customer = catalog.customer("c1")
    small = catalog.plan("small", amount_cents=3000)
    large = catalog.plan("large", amount_cents=6000)
    old_id, new_id = uuid.uuid4(), uuid.uuid4()
    catalog.subscription(
        "s1", customer, small, "2024-04-01", terminated_at="2024-04-16T10:00:00",
        next_subscription_id=new_id, subscription_id=old_id,
    )  # fmt: skip
    catalog.subscription(
        "s1", customer, large, "2024-04-16T10:00:00", previous_subscription_id=old_id,
        subscription_id=new_id, subscription_at="2024-04-01",
    )  # fmt: skip


def test_upgrade_bills_the_upgrade_day_on_the_new_plan(rated: Rated) -> None:
    april = rated.fees("upgrade", "fee_type = 'subscription' AND period_from < '2024-05-01'")
    # Old plan: 1..15 April = 15 of 30 days of 30.00; new plan: 16..30 = 15 of 30 days of 60.00.
    assert sorted(cents(april)) == [1500, 3000]


@api_scenario
def timezone_boundary(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1", timezone="Asia/Tokyo")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("tokyo")
    catalog.charge(plan, calls, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-03-01T00:00:00+09:00")
    # 2024-03-31T16:00Z is 2024-04-01 01:00 in Tokyo: April usage.
    catalog.events(
        "s1", "calls", [{"timestamp": "2024-03-31T14:00:00"}, {"timestamp": "2024-03-31T16:00:00"}]
    )


def test_periods_follow_the_customer_timezone(rated: Rated) -> None:
    fees = rated.charge_fees("timezone_boundary", "calls")
    assert cents(fees)[:2] == [100, 100]
    assert fees[0]["period_from"] == datetime(2024, 2, 29, 15, 0)  # March 1st, 00:00 JST
    assert fees[0]["billing_date"] == date(2024, 4, 1)
    assert fees[0]["timezone"] == "Asia/Tokyo"


@api_scenario
def yearly_leap_in_advance(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("yearly", interval="yearly", amount_cents=36600, pay_in_advance=True)
    catalog.subscription("s1", customer, plan, "2024-01-15", billing_time="anniversary")


def test_in_advance_yearly_fee_is_billed_at_the_period_start(rated: Rated) -> None:
    fees = rated.subscription_fees("yearly_leap_in_advance")
    assert cents(fees) == [36600]
    assert fees[0]["billing_date"] == date(2024, 1, 15)
    assert fees[0]["period_to"] == datetime(2025, 1, 14, 23, 59, 59, 999000)


@api_scenario
def yearly_charges_billed_monthly(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    calendar = catalog.plan(
        "yearly-calendar", interval="yearly", amount_cents=36600, pay_in_advance=True,
        bill_charges_monthly=True,
    )  # fmt: skip
    catalog.charge(calendar, calls, "standard", {"amount": "1"})
    catalog.subscription("calendar", customer, calendar, "2024-02-10")
    anniversary = catalog.plan("yearly-anniversary", interval="yearly", bill_charges_monthly=True)
    catalog.charge(anniversary, calls, "standard", {"amount": "1"})
    catalog.subscription(
        "anniversary", customer, anniversary, "2024-01-31T09:00:00", billing_time="anniversary"
    )
    catalog.events(
        "calendar",
        "calls",
        [{"timestamp": "2024-02-20T10:00:00"}] * 2
        + [{"timestamp": "2024-03-05T10:00:00"}] * 3
        + [{"timestamp": "2024-06-30T23:00:00"}],
    )
    catalog.events(
        "anniversary",
        "calls",
        [{"timestamp": "2024-02-28T12:00:00"}]
        + [{"timestamp": "2024-02-29T12:00:00"}] * 2
        + [{"timestamp": "2024-06-29T12:00:00"}] * 4,
    )


def test_yearly_plans_bill_their_charges_monthly(rated: Rated) -> None:
    def of(subscription: str) -> list[FeeRow]:
        return rated.fees(
            "yearly_charges_billed_monthly", f"external_subscription_id = '{subscription}'"
        )

    calendar = of("calendar")
    # The year in advance from February 10th: 10 Feb..31 Dec = 326 of 366 days of 366.00.
    assert [(fee["fee_type"], fee["amount_cents"]) for fee in calendar][-1] == (
        "subscription",
        32600,
    )
    assert calendar[-1]["billing_date"] == date(2024, 2, 10)
    assert calendar[-1]["period_to"] == datetime(2024, 12, 31, 23, 59, 59, 999000)
    # Charges month by month, the first from the subscription's start: 2 calls in February,
    # 3 in March, none in April and May, 1 in June (closed at the rating instant).
    charges = [fee for fee in calendar if fee["fee_type"] == "charge"]
    assert cents(charges) == [200, 300, 0, 0, 100]
    assert [fee["period_from"].date() for fee in charges] == [
        date(2024, 2, 10),
        date(2024, 3, 1),
        date(2024, 4, 1),
        date(2024, 5, 1),
        date(2024, 6, 1),
    ]
    assert [fee["billing_date"] for fee in charges] == [date(2024, m, 1) for m in range(3, 8)]

    anniversary = of("anniversary")
    # In arrears, the year is still open: charge fees only, each month from the 31st
    # anniversary (the last day of shorter months): 1 call on Feb 28th, 2 on Feb 29th (the next
    # month), 4 on June 29th (the month of May 31st-June 29th).
    assert {fee["fee_type"] for fee in anniversary} == {"charge"}
    assert cents(anniversary) == [100, 200, 0, 0, 400]
    assert [fee["period_from"].date() for fee in anniversary] == MONTH_END_PERIOD_STARTS
    assert [fee["billing_date"] for fee in anniversary] == MONTH_END_BILLING_DATES


# --- pay in advance, minimums ------------------------------------------------------------------


@api_scenario
def pay_in_advance(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    seats = catalog.metric("seats", "sum_agg", "delta")
    plan = catalog.plan("advance-charges")
    catalog.charge(plan, seats, "standard", {"amount": "1"}, pay_in_advance=True)
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "seats",
        [
            {"timestamp": "2024-06-02", "properties": {"delta": "10"}, "transaction_id": "t1"},
            {"timestamp": "2024-06-03", "properties": {"delta": "-4"}, "transaction_id": "t2"},
            {"timestamp": "2024-06-04", "properties": {"delta": "8"}, "transaction_id": "t3"},
        ],
    )


def test_pay_in_advance_bills_increases_above_the_peak(rated: Rated) -> None:
    fees = rated.charge_fees("pay_in_advance", "seats")
    assert [(fee["source_transaction_id"], fee["amount_cents"]) for fee in fees] == [
        ("t1", 1000),
        ("t2", 0),
        ("t3", 400),
    ]
    assert [fee["billing_date"] for fee in fees] == [date(2024, 6, d) for d in (2, 3, 4)]


@api_scenario
def pay_in_advance_corrections(catalog: ApiCatalog) -> None:
    """Transaction ids re-sent under another metric on a plan with a pay-in-advance charge, rated
    by a full build (which reads only the subscriptions of such plans): each counts where its
    latest version says. A subscription on a plan without one reuses a transaction id."""
    customer = catalog.customer("c1")
    seats = catalog.metric("seats", "sum_agg", "n")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("advance-corrections")
    catalog.charge(plan, seats, "standard", {"amount": "1"}, pay_in_advance=True)
    catalog.charge(plan, calls, "standard", {"amount": "0.5"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    arrears_plan = catalog.plan("arrears-only")
    catalog.charge(arrears_plan, calls, "standard", {"amount": "0.5"})
    catalog.subscription("s2", customer, arrears_plan, "2024-06-01")
    catalog.events(
        "s1",
        "seats",
        [
            {"timestamp": "2024-06-02", "properties": {"n": "10"}, "transaction_id": "tx-a"},
            {"timestamp": "2024-06-04", "properties": {"n": "3"}, "transaction_id": "tx-c"},
            {"timestamp": "2024-06-05", "properties": {"n": "5"}, "transaction_id": "tx-d"},
        ],
    )
    catalog.events("s1", "calls", [{"timestamp": "2024-06-03", "transaction_id": "tx-b"}])
    # The corrections: tx-a moves to calls, tx-b to seats, tx-d keeps seats with 2 instead of 5.
    catalog.events("s1", "calls", [{"timestamp": "2024-06-02", "transaction_id": "tx-a"}])
    catalog.events(
        "s1",
        "seats",
        [
            {"timestamp": "2024-06-03", "properties": {"n": "4"}, "transaction_id": "tx-b"},
            {"timestamp": "2024-06-05", "properties": {"n": "2"}, "transaction_id": "tx-d"},
        ],
    )
    catalog.events(
        "s2",
        "calls",
        [
            {"timestamp": "2024-06-03", "transaction_id": "tx-b"},
            {"timestamp": "2024-06-04", "transaction_id": "tx-e"},
        ],
    )


def test_a_transaction_resent_under_another_metric_is_billed_in_advance_as_its_latest(
    rated: Rated,
) -> None:
    # Seats in advance, at 1.00 a unit above the running peak: tx-b 4 -> 4 units, 400;
    # tx-c 3 -> 7 units, 300; tx-d's latest 2 -> 9 units, 200. tx-a (now a call) bills nothing.
    seats = rated.charge_fees("pay_in_advance_corrections", "seats")
    assert [(fee["source_transaction_id"], fee["amount_cents"]) for fee in seats] == [
        ("tx-b", 400),
        ("tx-c", 300),
        ("tx-d", 200),
    ]
    # June's calls in arrears: s1 has tx-a only (tx-b is a seat now), 1 x 0.50 = 50; s2 its own
    # tx-b and tx-e, 2 x 0.50 = 100.
    calls = rated.charge_fees("pay_in_advance_corrections", "calls")
    june = {fee["external_subscription_id"]: fee for fee in calls if fee["period_from"].month == 6}
    assert {sub: (fee["events_count"], fee["amount_cents"]) for sub, fee in june.items()} == {
        "s1": (1, 50),
        "s2": (2, 100),
    }


@api_scenario
def pay_in_advance_prorated(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    seats = catalog.metric("seats", "unique_count_agg", "user", recurring=True)
    plan = catalog.plan("advance-seats")
    catalog.charge(plan, seats, "standard", {"amount": "10"}, pay_in_advance=True, prorated=True)
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events(
        "s1",
        "seats",
        [
            {
                "timestamp": "2024-06-01T09:00:00",
                "properties": {"user": "a"},
                "transaction_id": "t1",
            },
            {
                "timestamp": "2024-06-11T09:00:00",
                "properties": {"user": "b"},
                "transaction_id": "t2",
            },
            {
                "timestamp": "2024-06-12T09:00:00",
                "properties": {"user": "a"},
                "transaction_id": "t3",
            },
        ],
    )


def test_prorated_pay_in_advance_bills_the_days_left(rated: Rated) -> None:
    fees = rated.charge_fees("pay_in_advance_prorated", "seats")
    # a on June 1 09:00: 29 days 15 hours left, 30 started days of 30: 1 x 10.00. b on June 11:
    # 20 of 30 days, 0.666.. rounded up to 0.66667 seats x 10.00 = 6.6667 -> 667. a again: 0.
    # July renews both seats carried into it, whole: 2 x 10.00.
    assert [(fee["source_transaction_id"], fee["units"], fee["amount_cents"]) for fee in fees] == [
        ("t1", Decimal(1), 1000),
        ("t2", Decimal("0.66667"), 667),
        ("t3", Decimal(0), 0),
        (None, Decimal(2), 2000),
    ]
    assert fees[-1]["period_from"].month == 7


@scenario
def charge_minimum_on_termination(catalog: Catalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("minimum")
    catalog.charge(plan, calls, "standard", {"amount": "1"}, min_amount_cents=1000)
    catalog.subscription("s1", customer, plan, "2023-02-01", terminated_at="2023-02-25T12:00:00")
    catalog.events("s1", "calls", [{"timestamp": f"2023-02-{day:02d}"} for day in range(1, 9)])


def test_per_charge_minimum_is_prorated_on_termination(rated: Rated) -> None:
    true_ups = rated.fees("charge_minimum_on_termination", "is_true_up = 1")
    # 10.00 x 25/28 - 8.00 = 0.928..., rounded half-up: 93 cents.
    assert cents(true_ups) == [93]
    assert true_ups[0]["fee_type"] == "charge"


@scenario
def termination_without_closing_invoice(catalog: Catalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("arrears", amount_cents=3_000)
    catalog.charge(plan, calls, "standard", {"amount": "1"})
    for external_id, invoice in (("skipped", "skip"), ("generated", "generate")):
        catalog.subscription(
            external_id, customer, plan, "2023-01-01", terminated_at="2023-02-14T12:00:00",
            on_termination_invoice=invoice,
        )  # fmt: skip
        catalog.events(
            external_id, "calls", [{"timestamp": "2023-01-10"}, {"timestamp": "2023-02-10"}]
        )


def test_a_termination_that_skips_its_invoice_leaves_its_last_period_uninvoiced(
    rated: Rated,
) -> None:
    fees = rated.fees("termination_without_closing_invoice")
    invoiceable = {
        (fee["external_subscription_id"], fee["fee_type"], fee["period_from"].month): fee[
            "invoiceable"
        ]
        for fee in fees
    }
    # January is invoiced for both; February, the period each ended in, only without "skip".
    assert invoiceable == {
        ("skipped", "subscription", 1): 1, ("skipped", "charge", 1): 1,
        ("skipped", "subscription", 2): 0, ("skipped", "charge", 2): 0,
        ("generated", "subscription", 1): 1, ("generated", "charge", 1): 1,
        ("generated", "subscription", 2): 1, ("generated", "charge", 2): 1,
    }  # fmt: skip
    # Rated all the same: February's 14 days of 28 and its one call.
    february = sorted(fee["amount_cents"] for fee in fees if fee["period_from"].month == 2)
    assert february == [100, 100, 1_500, 1_500]


@api_scenario
def minimum_commitment(catalog: ApiCatalog) -> None:
    for code in ("plan_vat", "commitment_vat"):
        catalog.lago.taxes.create(Tax(name=code, code=code, rate=20.0))
    customer = catalog.customer("c1")
    plan = catalog.plan("commit", minimum_commitment_amount_cents=1_000_000)
    catalog.lago.plans.update(
        Plan(
            tax_codes=["plan_vat"],
            minimum_commitment=MinimumCommitment(
                amount_cents=1_000_000, tax_codes=["commitment_vat"]
            ),
        ),
        "commit",
    )
    catalog.subscription("s1", customer, plan, "2024-02-28")


def test_minimum_commitment_is_prorated_over_a_partial_period(rated: Rated) -> None:
    true_ups = rated.fees("minimum_commitment", "fee_type = 'commitment'")
    # February: 10,000.00 x 2/29 = 689.655..., nothing else billed: 68966 cents.
    assert cents(true_ups)[0] == 68966
    # The commitment's own taxes, not the plan's (which its subscription fees carry).
    assert {tuple(fee["tax_codes"]) for fee in true_ups} == {("commitment_vat",)}
    assert {tuple(fee["tax_codes"]) for fee in rated.subscription_fees("minimum_commitment")} == {
        ("plan_vat",)
    }


@api_scenario
def price_change(catalog: ApiCatalog) -> None:
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    plan = catalog.plan("reprice")
    charge = catalog.charge(plan, calls, "standard", {"amount": "1"})
    catalog.subscription("s1", customer, plan, "2024-06-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-06-10"}, {"timestamp": "2024-06-11"}])
    PRICE_CHANGE.update(catalog=catalog, plan=plan, metric=calls, charge=charge)


PRICE_CHANGE: dict[str, Any] = {}


def test_rating_a_billing_date_range_again_applies_a_new_price(rated: Rated, rater: Rater) -> None:
    assert cents(rated.charge_fees("price_change", "calls")) == [200]
    # The new price, set now through the API on the plan that has a live subscription.
    PRICE_CHANGE["catalog"].charge(
        PRICE_CHANGE["plan"], PRICE_CHANGE["metric"], "standard", {"amount": "2"},
        charge_id=PRICE_CHANGE["charge"],
    )  # fmt: skip
    # A plain incremental run does not see catalog changes; a billing-date range does.
    rater.run("--as-of", AS_OF, "--no-tests")
    assert cents(rated.charge_fees("price_change", "calls")) == [200]
    rater.run("--as-of", AS_OF, "--from", "2024-07-01", "--to", "2024-07-01", "--no-tests")
    assert cents(rated.charge_fees("price_change", "calls")) == [400]


# --- contract ------------------------------------------------------------------------------------


def test_fee_ids_are_unique_and_stable_across_a_full_refresh(rated: Rated, rater: Rater) -> None:
    def snapshot() -> set[tuple[uuid.UUID, int]]:
        return {
            (fee["fee_id"], fee["amount_cents"])
            for name in rated.organizations
            for fee in rated.fees(name)
        }

    before = snapshot()
    assert len({fee_id for fee_id, _ in before}) == len(before)
    rater.run("--as-of", AS_OF, "--full-refresh", "--no-tests")
    assert snapshot() == before
