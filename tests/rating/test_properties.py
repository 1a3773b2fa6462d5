"""Property tests (hypothesis) of the rating.

Charge models: the dbt macros, compiled once by dbt and evaluated by the warehouse, against an
independent Python reading of billing-semantics.md: graduated equals the sum over its tiers (units
poured tier by tier up to each tier's capacity), volume prices all units at exactly one tier,
package is monotone in the units.

Event streams: random streams rated three ways give the same fees: inserted in timestamp order;
shuffled with duplicated deliveries; shuffled and split over three incremental `rate run`s, with
earlier versions of some transactions (another value, code or time of the same day) sent in the
same or an earlier run. Each stream goes to a subscription billed in arrears and, moved into its
open period, to one with pay-in-advance charges, which each incremental run re-prices with every
version sent so far.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog
from tests.rating.conftest import fees_of
from tests.support.processes import REPO_ROOT, VENV_BIN

CASE_PARAMETERS = (
    "{units:Decimal(38, 12)} AS units, {tiers_from:Array(Decimal(38, 12))} AS tiers_from, "
    "{tiers_to:Array(Nullable(Decimal(38, 12)))} AS tiers_to, "
    "{tiers_price:Array(Decimal(38, 12))} AS tiers_price, "
    "{tiers_flat:Array(Decimal(38, 12))} AS tiers_flat, "
    "{free_units:Decimal(38, 12)} AS free_units, "
    "{package_size:Decimal(38, 12)} AS package_size, "
    "{package_price:Decimal(38, 12)} AS package_price"
)
CHARGE_MODELS_SQL = (
    "select {{ graduated_amount('units', 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat') }}"
    " as graduated,"
    " {{ volume_tier_index('units', 'tiers_from', 'tiers_to') }} as volume_tier,"
    " {{ volume_amount('units', 'units', 'tiers_from', 'tiers_to', 'tiers_price', 'tiers_flat') }}"
    " as volume,"
    " {{ package_amount('units', 'free_units', 'package_size', 'package_price') }} as package"
    f" from (select {CASE_PARAMETERS})"
)


@pytest.fixture(scope="module")
def charge_models_sql(warehouse: Warehouse, rater: Rater) -> str:
    """The charge-model macros compiled by dbt into one parameterized query."""
    result = subprocess.run(
        [str(VENV_BIN / "dbt"), "compile", "--quiet", "--inline", CHARGE_MODELS_SQL,
         "--project-dir", str(REPO_ROOT / "dbt_project"),
         "--profiles-dir", str(REPO_ROOT / "dbt_project")],
        env={**os.environ, **warehouse.env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
             "DBT_TARGET_PATH": str(rater.target_path), "DBT_LOG_PATH": str(rater.target_path)},
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return result.stdout.strip()


@dataclass(frozen=True)
class Tier:
    start: Decimal
    end: Decimal | None
    price: Decimal
    flat: Decimal


def prices() -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def integer_tiers(draw: st.DrawFn) -> list[Tier]:
    """Inclusive integer tiers 0-b1, b1+1-b2, ..., bk+1-inf, as Lago's UI builds them."""
    bounds = sorted(draw(st.sets(st.integers(1, 10_000), min_size=0, max_size=4)))
    starts = [0] + [bound + 1 for bound in bounds]
    ends: list[int | None] = [*bounds, None]
    return [
        Tier(Decimal(start), None if end is None else Decimal(end), draw(prices()), draw(prices()))
        for start, end in zip(starts, ends, strict=True)
    ]


units_strategy = st.decimals(
    min_value=0, max_value=20_000, places=3, allow_nan=False, allow_infinity=False
)


def evaluate(
    warehouse: Warehouse, sql: str, tiers: list[Tier], units: Decimal, **package: Any
) -> Any:
    parameters = {
        "units": units,
        "tiers_from": [tier.start for tier in tiers],
        "tiers_to": [tier.end for tier in tiers],
        "tiers_price": [tier.price for tier in tiers],
        "tiers_flat": [tier.flat for tier in tiers],
        "free_units": package.get("free_units", Decimal(0)),
        "package_size": package.get("package_size", Decimal(1)),
        "package_price": package.get("package_price", Decimal(0)),
    }
    return warehouse.client().query(sql, parameters=parameters).first_item


def graduated_by_pouring(tiers: list[Tier], units: Decimal) -> Decimal:
    """Pour the units into the tiers in order, each holding its capacity (the first tier `to`
    units, a later one `to - from + 1`); a tier that receives units adds its flat fee."""
    if units == 0:
        return tiers[0].flat
    remaining, amount = units, Decimal(0)
    for index, tier in enumerate(tiers):
        if remaining <= 0:
            break
        capacity = None if tier.end is None else tier.end - tier.start + (0 if index == 0 else 1)
        poured = remaining if capacity is None else min(remaining, capacity)
        amount += poured * tier.price + tier.flat
        remaining -= poured
    return amount


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(tiers=integer_tiers(), units=units_strategy)
def test_graduated_is_the_sum_over_its_tiers(
    warehouse: Warehouse, charge_models_sql: str, tiers: list[Tier], units: Decimal
) -> None:
    result = evaluate(warehouse, charge_models_sql, tiers, units)
    assert result["graduated"] == graduated_by_pouring(tiers, units)


@PROPERTY_SETTINGS
@given(tiers=integer_tiers(), units=units_strategy)
def test_volume_prices_every_unit_at_one_tier(
    warehouse: Warehouse, charge_models_sql: str, tiers: list[Tier], units: Decimal
) -> None:
    result = evaluate(warehouse, charge_models_sql, tiers, units)
    rounded_up = units.to_integral_value(rounding=ROUND_CEILING)
    matching = [
        index
        for index, tier in enumerate(tiers)
        if tier.start <= rounded_up and (tier.end is None or units <= tier.end)
    ]
    assert result["volume_tier"] == matching[0] + 1
    tier = tiers[matching[0]]
    assert result["volume"] == units * tier.price + tier.flat


@PROPERTY_SETTINGS
@given(
    units=st.lists(units_strategy, min_size=2, max_size=2),
    free_units=st.integers(0, 50),
    package_size=st.integers(1, 500),
    package_price=prices(),
)
def test_package_is_monotone_and_counts_started_packages(
    warehouse: Warehouse,
    charge_models_sql: str,
    units: list[Decimal],
    free_units: int,
    package_size: int,
    package_price: Decimal,
) -> None:
    package = {
        "free_units": Decimal(free_units),
        "package_size": Decimal(package_size),
        "package_price": package_price,
    }
    low, high = sorted(units)
    tiers = [Tier(Decimal(0), None, Decimal(0), Decimal(0))]
    low_amount = evaluate(warehouse, charge_models_sql, tiers, low, **package)["package"]
    high_amount = evaluate(warehouse, charge_models_sql, tiers, high, **package)["package"]
    assert low_amount <= high_amount
    packages = (max(low - free_units, Decimal(0)) / package_size).to_integral_value(ROUND_CEILING)
    assert low_amount == packages * package_price


# --- event streams -----------------------------------------------------------------------------

START = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = "2024-04-01T00:00:00"


@st.composite
def event_streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events over January-March on three metrics; distinct timestamps, unique transaction ids."""
    size = draw(st.integers(1, 40))
    seconds = draw(
        st.lists(st.integers(0, 90 * 86400 - 1), min_size=size, max_size=size, unique=True)
    )
    events = []
    for number, offset in enumerate(sorted(seconds)):
        code = draw(st.sampled_from(["calls", "storage", "users"]))
        properties: dict[str, Any] = {"value": draw(st.integers(0, 30))}
        region = draw(st.sampled_from(["eu", "us", None]))
        if region:
            properties["region"] = region
        properties["user"] = f"u{draw(st.integers(0, 5))}"
        if code == "users" and draw(st.booleans()):
            properties["operation_type"] = "remove"
        timestamp = (START + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S")
        events.append(
            {"timestamp": timestamp, "properties": properties, "transaction_id": f"t{number}",
             "code": code}
        )  # fmt: skip
    return events


def seed_stream_catalog(catalog: Catalog) -> None:
    customer = catalog.customer("c1")
    plan = catalog.plan("stream", amount_cents=1000)
    calls = catalog.metric("calls", "count_agg")
    storage = catalog.metric("storage", "sum_agg", "value")
    users = catalog.metric("users", "unique_count_agg", "user")
    catalog.charge(plan, calls, "standard", {"amount": "0.35", "grouped_by": ["region"]})
    graduated = {
        "graduated_ranges": [
            {"from_value": 0, "to_value": 20, "per_unit_amount": "0.5", "flat_amount": "1"},
            {"from_value": 21, "to_value": None, "per_unit_amount": "0.25", "flat_amount": "2"},
        ]
    }
    catalog.charge(plan, storage, "graduated", graduated)
    catalog.charge(plan, users, "package", {"amount": "3", "package_size": 2, "free_units": 1})
    catalog.subscription("s1", customer, plan, "2024-01-01")
    # In advance, on an anniversary period still open at AS_OF (March 20 - April 19), which
    # receives every event (in_open_period): each run that brings events re-prices it.
    advance = catalog.plan("advance")
    catalog.charge(advance, calls, "standard", {"amount": "0.35"}, pay_in_advance=True)
    catalog.charge(advance, storage, "graduated", graduated, pay_in_advance=True)
    catalog.subscription("s2", customer, advance, "2024-03-20", billing_time="anniversary")


def insert_stream(catalog: Catalog, events: list[dict[str, Any]]) -> None:
    for event in events:
        catalog.events("s1", event["code"], [event])
        catalog.events("s2", event["code"], [in_open_period(event)])


def in_open_period(event: dict[str, Any]) -> dict[str, Any]:
    """The event moved to a day of March 20th-29th (s2's open period), by its own day: the
    versions of one transaction, sent on one day, stay on one day."""
    day = datetime.fromisoformat(event["timestamp"]).timetuple().tm_yday % 10
    return {**event, "timestamp": f"2024-03-{20 + day}{event['timestamp'][10:]}"}


def earlier_version(event: dict[str, Any], shuffler: random.Random) -> dict[str, Any]:
    """A version of the event sent before it: another value, code or second of the same day (so
    the same period: a re-sent event that moves to another period is re-rated by a full refresh
    only)."""
    day = event["timestamp"][:10]
    return {
        **event,
        "code": shuffler.choice(["calls", "storage", "users"]),
        "properties": {**event["properties"], "value": shuffler.randint(0, 30)},
        "timestamp": f"{day}T{shuffler.randint(0, 23):02}:{shuffler.randint(0, 59):02}:00",
    }


def comparable_fees(warehouse: Warehouse, organization_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return sorted(
        (
            fee["fee_type"],
            fee["billable_metric_code"] or "",
            fee["period_from"],
            json.dumps(fee["grouped_by"], sort_keys=True),
            fee["units"],
            fee["events_count"],
            fee["amount_cents"],
        )
        for fee in fees_of(warehouse.client(), organization_id)
    )


def test_fees_do_not_depend_on_ingestion_order_duplicates_or_incremental_runs(
    warehouse: Warehouse, rater: Rater
) -> None:
    streams: list[list[dict[str, Any]]] = []

    @settings(max_examples=6, deadline=None, database=None)
    @given(stream=event_streams(), seed=st.integers(0, 2**32 - 1))
    def draw_streams(stream: list[dict[str, Any]], seed: int) -> None:
        streams.append([*stream, {"seed": seed}])

    draw_streams()
    client = warehouse.client()
    variants = []
    for drawn in streams:
        events, shuffler = drawn[:-1], random.Random(drawn[-1]["seed"])
        ordered, redelivered, split = Catalog(client), Catalog(client), Catalog(client)
        for catalog in (ordered, redelivered, split):
            seed_stream_catalog(catalog)
        insert_stream(ordered, events)
        duplicated = events + [event for event in events if shuffler.random() < 0.3]
        insert_stream(redelivered, shuffler.sample(duplicated, len(duplicated)))
        shuffled = shuffler.sample(events, len(events))
        cuts = sorted(shuffler.sample(range(len(shuffled) + 1), 2))
        batches = [shuffled[: cuts[0]], shuffled[cuts[0] : cuts[1]], shuffled[cuts[1] :]]
        # Some transactions are sent first in another version, in the same or an earlier run.
        for number in range(3):
            for event in [event for event in batches[number] if shuffler.random() < 0.3]:
                batches[shuffler.randint(0, number)].insert(0, earlier_version(event, shuffler))
        variants.append((ordered, redelivered, split, batches))

    for batch_number in range(3):
        for _, _, split, batches in variants:
            insert_stream(split, batches[batch_number])
        rater.run("--as-of", AS_OF, "--no-tests")

    for ordered, redelivered, split, _ in variants:
        expected = comparable_fees(warehouse, ordered.organization_id)
        assert expected, "every subscription has fees"
        assert comparable_fees(warehouse, redelivered.organization_id) == expected
        assert comparable_fees(warehouse, split.organization_id) == expected
