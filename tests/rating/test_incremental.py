"""Incremental rating: a new day of events and a late event for a closed period, rated by a plain
`meterhouse rate run`, give fee for fee what a full refresh gives, and closed periods without
late events are left alone, save the later periods a recurring metric carries a late event into.
So do open pay-in-advance periods re-priced over several runs with re-sent transactions, a
catalog change, a new subscription and a period closing. Fees also record which events and which
price they were rated from. A plain run re-creates only the views whose definition changed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.analytics.dbt_runner import run_dbt
from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog
from tests.rating.conftest import FeeRow, fees_of

FIRST_RUN = "2024-03-01T00:00:00"  # January and February closed, March open
NEXT_DAY = "2024-03-02T00:00:00"


def by_fee(fees: list[FeeRow]) -> dict[uuid.UUID, dict[str, Any]]:
    """Fees keyed by id, without the instant they were rated at (the only column a re-run moves)."""
    return {fee["fee_id"]: {k: v for k, v in fee.items() if k != "rated_at"} for fee in fees}


def metric_fee(fees: list[FeeRow], code: str, month: int) -> FeeRow:
    [fee] = [
        fee
        for fee in fees
        if fee["billable_metric_code"] == code and fee["period_from"].month == month
    ]
    return fee


def calls_fee(fees: list[FeeRow], month: int) -> FeeRow:
    return metric_fee(fees, "calls", month)


# A view's last (re)creation and its comment, by name.
ViewStates = dict[str, tuple[datetime, str]]


def views_of(warehouse: Warehouse) -> ViewStates:
    rows = (
        warehouse.client()
        .query(
            "SELECT name, metadata_modification_time, comment FROM system.tables "
            "WHERE database = currentDatabase() AND engine = 'View'"
        )
        .result_rows
    )
    return {name: (modified, comment) for name, modified, comment in rows}


@pytest.fixture(scope="module")
def view_states() -> list[ViewStates]:
    """The views after each run of the `incremental` fixture, which fills this list."""
    return []


@pytest.fixture(scope="module")
def incremental(
    warehouse: Warehouse, rater: Rater, view_states: list[ViewStates]
) -> tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]]:
    """Fees after a first run, after an incremental run over a new day plus a late event, and
    after a full refresh at the same instant."""
    client = warehouse.client()
    catalog = Catalog(client)
    customer = catalog.customer("c1")
    calls = catalog.metric("calls", "count_agg")
    seats = catalog.metric("seats", "sum_agg", "n")
    storage = catalog.metric("storage", "sum_agg", "gb", recurring=True)
    plan = catalog.plan("monthly", amount_cents=1000)
    catalog.charge(plan, calls, "standard", {"amount": "0.5"})
    catalog.charge(plan, seats, "standard", {"amount": "2"}, pay_in_advance=True)
    catalog.subscription("s1", customer, plan, "2024-01-01")
    # Recurring storage on a subscription of its own: its late event re-rates every later period.
    storage_plan = catalog.plan("storage")
    catalog.charge(storage_plan, storage, "standard", {"amount": "1"})
    catalog.subscription("s2", customer, storage_plan, "2024-01-01")
    # A third subscription with closed periods, on metrics of its own, that receives no late
    # event: the new day touches its open period only.
    requests = catalog.metric("requests", "count_agg")
    licenses = catalog.metric("licenses", "sum_agg", "n")
    team_plan = catalog.plan("team", amount_cents=2000)
    catalog.charge(team_plan, requests, "standard", {"amount": "0.5"})
    catalog.charge(team_plan, licenses, "standard", {"amount": "2"}, pay_in_advance=True)
    catalog.subscription("s3", customer, team_plan, "2024-01-01")
    catalog.events("s1", "calls", [{"timestamp": "2024-01-10"}, {"timestamp": "2024-01-20"}])
    catalog.events("s1", "calls", [{"timestamp": "2024-02-05"}])
    catalog.events("s1", "seats", [{"timestamp": "2024-02-03", "properties": {"n": 3}}])
    catalog.events("s2", "storage", [{"timestamp": "2024-01-15", "properties": {"gb": 5}}])
    catalog.events("s3", "requests", [{"timestamp": "2024-01-12"}, {"timestamp": "2024-02-07"}])
    catalog.events(
        "s3",
        "licenses",
        [{"timestamp": "2024-02-10", "properties": {"n": 4}, "transaction_id": "l-feb"}],
    )
    rater.run("--as-of", FIRST_RUN, "--no-tests")
    first = fees_of(client, catalog.organization_id)
    view_states.append(views_of(warehouse))

    # The next day's events (March is still open) and a late event for closed January.
    catalog.events("s1", "calls", [{"timestamp": "2024-03-01T10:00:00"}])
    catalog.events(
        "s1",
        "seats",
        [{"timestamp": "2024-03-01T11:00:00", "properties": {"n": 2}, "transaction_id": "m1"}],
    )
    catalog.events("s1", "calls", [{"timestamp": "2024-01-31T23:00:00"}])
    catalog.events("s2", "storage", [{"timestamp": "2024-01-25", "properties": {"gb": 2}}])
    catalog.events("s3", "requests", [{"timestamp": "2024-03-01T12:00:00"}])
    catalog.events(
        "s3",
        "licenses",
        [{"timestamp": "2024-03-01T13:00:00", "properties": {"n": 1}, "transaction_id": "l-mar"}],
    )
    rater.run("--as-of", NEXT_DAY, "--no-tests")
    after_day = fees_of(client, catalog.organization_id)
    view_states.append(views_of(warehouse))

    rater.run("--as-of", NEXT_DAY, "--full-refresh", "--no-tests")
    refreshed = fees_of(client, catalog.organization_id)
    view_states.append(views_of(warehouse))
    return catalog, first, after_day, refreshed


def test_an_incremental_day_equals_a_full_refresh_fee_by_fee(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]],
) -> None:
    _, _, after_day, refreshed = incremental
    assert by_fee(after_day) == by_fee(refreshed)


def test_a_late_event_rerates_its_closed_period_only(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]],
) -> None:
    _, first, after_day, _ = incremental
    # January: 2 calls x 0.50 = 100 cents, then 3 with the late one = 150; February: 1 call = 50.
    assert calls_fee(first, 1)["amount_cents"] == 100
    assert calls_fee(after_day, 1)["amount_cents"] == 150
    assert calls_fee(after_day, 1)["rated_at"] > calls_fee(first, 1)["rated_at"]
    # February received nothing: rated once, by the first run.
    assert calls_fee(after_day, 2)["amount_cents"] == 50
    assert calls_fee(after_day, 2)["rated_at"] == calls_fee(first, 2)["rated_at"]
    # The new day bills its pay-in-advance event: 2 seats x 2.00 = 400 cents, March's first.
    [march_seats] = [fee for fee in after_day if fee["source_transaction_id"] == "m1"]
    assert march_seats["amount_cents"] == 400


def closed_fees_of(fees: list[FeeRow], subscription: str) -> dict[uuid.UUID, FeeRow]:
    """The fees of one subscription's closed periods (January and February), by id."""
    return {
        fee["fee_id"]: fee
        for fee in fees
        if fee["external_subscription_id"] == subscription and fee["period_from"].month < 3
    }


def test_a_late_event_leaves_the_other_subscriptions_closed_periods_alone(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]],
) -> None:
    _, first, after_day, refreshed = incremental
    # s1's late January event re-rated s1's January; s3 received no late event, so its closed
    # periods' fees are the first run's rows, rated_at included, and what a full refresh gives.
    untouched = closed_fees_of(after_day, "s3")
    assert untouched == closed_fees_of(first, "s3")
    assert by_fee(list(untouched.values())) == by_fee(
        list(closed_fees_of(refreshed, "s3").values())
    )
    amounts = sorted(
        (
            fee["period_from"].month,
            fee["fee_type"],
            fee["billable_metric_code"],
            fee["amount_cents"],
        )
        for fee in untouched.values()
    )
    # Plan 20.00 in arrears for January and February; one request x 0.50 a month; 4 licenses
    # bought in advance on February 10 x 2.00 = 8.00.
    assert amounts == [
        (1, "charge", "requests", 50),
        (1, "subscription", None, 2000),
        (2, "charge", "licenses", 800),
        (2, "charge", "requests", 50),
        (2, "subscription", None, 2000),
    ]
    # The new day's license in the open March period: 1 x 2.00 = 2.00.
    [march_licenses] = [fee for fee in after_day if fee["source_transaction_id"] == "l-mar"]
    assert march_licenses["amount_cents"] == 200


def test_a_late_recurring_event_rerates_every_later_period(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]], warehouse: Warehouse
) -> None:
    _, first, after_day, _ = incremental
    # Recurring storage: 5 GB from January 15, carried into February: 5 x 1.00 = 500 cents each.
    # The late 2 GB of January 25 makes both 7 x 1.00 = 700, though February received nothing.
    assert [metric_fee(first, "storage", month)["amount_cents"] for month in (1, 2)] == [500, 500]
    assert [metric_fee(after_day, "storage", month)["amount_cents"] for month in (1, 2)] == [
        700,
        700,
    ]
    february = metric_fee(after_day, "storage", 2)
    assert february["rated_at"] > metric_fee(first, "storage", 2)["rated_at"]
    # February's fee lists the January events it carries.
    listed = (
        warehouse.client()
        .query(
            "SELECT timestamp FROM fct_fee_events(fee_id = {f:UUID}) ORDER BY timestamp",
            parameters={"f": february["fee_id"]},
        )
        .result_rows
    )
    assert [timestamp for (timestamp,) in listed] == [datetime(2024, 1, 15), datetime(2024, 1, 25)]


def test_fees_record_their_events_and_price_versions(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]], warehouse: Warehouse
) -> None:
    catalog, _, after_day, _ = incremental
    january = calls_fee(after_day, 1)
    assert january["events_count"] == 3
    assert january["first_event_at"] == datetime(2024, 1, 10)
    assert january["last_event_at"] == datetime(2024, 1, 31, 23)
    client = warehouse.client()
    versions = dict(
        client.query(
            "SELECT id, max(version) FROM charges WHERE organization_id = {o:UUID} GROUP BY id",
            parameters={"o": catalog.organization_id},
        ).result_rows
    )
    plan_versions = dict(
        client.query(
            "SELECT id, max(version) FROM plans WHERE organization_id = {o:UUID} GROUP BY id",
            parameters={"o": catalog.organization_id},
        ).result_rows
    )
    assert january["charge_version"] == versions[january["charge_id"]]
    assert all(fee["plan_version"] == plan_versions[fee["plan_id"]] for fee in after_day)
    # The listing view returns exactly the events a fee was rated from.
    listed = client.query(
        "SELECT timestamp FROM fct_fee_events(fee_id = {f:UUID}) ORDER BY timestamp",
        parameters={"f": january["fee_id"]},
    ).result_rows
    assert [timestamp for (timestamp,) in listed] == [
        datetime(2024, 1, 10),
        datetime(2024, 1, 20),
        datetime(2024, 1, 31, 23),
    ]
    [march_seats] = [fee for fee in after_day if fee["source_transaction_id"] == "m1"]
    assert march_seats["first_event_at"] == march_seats["last_event_at"]
    assert march_seats["first_event_at"] == datetime(2024, 3, 1, 11)
    subscription_fees = [fee for fee in after_day if fee["fee_type"] == "subscription"]
    assert all(fee["first_event_at"] is None for fee in subscription_fees)


def test_a_run_recreates_only_the_views_whose_definition_changed(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]],
    view_states: list[ViewStates],
) -> None:
    first, after_day, refreshed = view_states
    # Each view carries the fingerprint of the definition it was created from.
    assert all(comment.startswith("dbt definition ") for _, comment in first.values())
    # The billing periods compile the rating instant in: a new instant re-creates that view.
    assert after_day["int_billing_periods"][0] > first["int_billing_periods"][0]
    assert after_day["int_billing_periods"][1] != first["int_billing_periods"][1]
    # The views rated on read (they read now()) and the staging views did not change: kept.
    for name in (
        "fct_open_period_fees",
        "fct_current_usage",
        "fct_current_pay_in_advance_usage",
        "fct_current_usage_in_use",
        "fct_current_pay_in_advance_usage_in_use",
        "fct_estimated_fees",
        "fct_estimated_fees_in_use",
        "fct_pay_in_advance_fees_since",
        "fct_fee_events",
        "stg_warehouse__charges",
    ):
        assert after_day[name] == first[name], name
    # --full-refresh at the same instant recomputes the tables and keeps every view: none of
    # their definitions changed.
    assert refreshed == after_day


def test_a_run_records_its_nodes_in_run_results(
    incremental: tuple[Catalog, list[FeeRow], list[FeeRow], list[FeeRow]], rater: Rater
) -> None:
    # The last run of the fixture (the full refresh) left dbt's record of every node it built.
    results = json.loads((rater.target_path / "run_results.json").read_text())
    statuses = {node["unique_id"].rsplit(".", 1)[1]: node["status"] for node in results["results"]}
    assert statuses["fct_fees"] == "success"
    assert statuses["fct_open_period_fees"] == "success"


@dataclass
class OpenPeriodRuns:
    incremental: list[FeeRow]
    refreshed: list[FeeRow]


def seats(subscription: str, catalog: Catalog, *events: tuple[str, int, str]) -> None:
    """Pay-in-advance seat events as (timestamp, seats, transaction id)."""
    catalog.events(
        subscription,
        "seats",
        [{"timestamp": t, "properties": {"n": n}, "transaction_id": tid} for t, n, tid in events],
    )


@pytest.fixture(scope="module")
def open_period_runs(warehouse: Warehouse, rater: Rater) -> OpenPeriodRuns:
    """Five incremental runs over open pay-in-advance periods, each re-priced with the versions
    of its events sent over the earlier runs: re-sent transactions (same key, another timestamp,
    another code), a charge becoming pay-in-advance, a new subscription and an anniversary period
    closing with a late event in it; then a full refresh at the last instant."""
    client = warehouse.client()
    catalog = Catalog(client)
    customer = catalog.customer("c1")
    seat_metric = catalog.metric("seats", "sum_agg", "n")
    calls = catalog.metric("calls", "count_agg")
    advance = catalog.plan("advance", amount_cents=1000)
    catalog.charge(advance, seat_metric, "standard", {"amount": "2"}, pay_in_advance=True)
    catalog.charge(advance, calls, "standard", {"amount": "0.5"})
    catalog.subscription("s4", customer, advance, "2024-01-01")
    catalog.subscription("s5", customer, advance, "2024-01-15", billing_time="anniversary")
    # Calls billed in arrears on a plan of their own, until the charge becomes pay-in-advance.
    later = catalog.plan("later", amount_cents=500)
    later_calls = catalog.charge(later, calls, "standard", {"amount": "0.5"})
    catalog.subscription("s6", customer, later, "2024-01-01")

    def rate(as_of: str, *args: str) -> None:
        rater.run("--as-of", as_of, "--no-tests", *args)

    seats("s4", catalog, ("2024-02-03", 3, "a0"), ("2024-03-02", 2, "a1"))
    catalog.events("s4", "calls", [{"timestamp": "2024-03-03"}])
    seats("s5", catalog, ("2024-02-20", 1, "b0"), ("2024-03-01", 4, "b1"))
    catalog.events("s6", "calls", [{"timestamp": "2024-03-02", "transaction_id": "c1"}])
    rate("2024-03-05T00:00:00")

    # Re-sent: a1 with the same key and more seats, b1 at another instant, b0 as another metric.
    seats("s4", catalog, ("2024-03-02", 5, "a1"), ("2024-03-05T08:00:00", 1, "a2"))
    seats("s5", catalog, ("2024-03-05T10:00:00", 4, "b1"))
    catalog.events("s5", "calls", [{"timestamp": "2024-02-20", "transaction_id": "b0"}])
    rate("2024-03-06T00:00:00")

    # The calls of plan `later` become pay-in-advance (re-rated with --from/--to, as a catalog
    # change is); a new subscription starts with a seat.
    catalog.charge(
        later, calls, "standard", {"amount": "0.5"}, pay_in_advance=True, charge_id=later_calls
    )
    catalog.events("s6", "calls", [{"timestamp": "2024-03-06T09:00:00", "transaction_id": "c2"}])
    catalog.subscription("s8", customer, advance, "2024-03-06")
    seats("s8", catalog, ("2024-03-06T10:00:00", 6, "d1"))
    rate("2024-03-07T00:00:00", "--from", "2024-01-01", "--to", "2024-04-30")

    # s5's anniversary period closes on March 14; a late seat lands in it, the next one opens.
    seats("s5", catalog, ("2024-03-10", 2, "b3"), ("2024-03-15T01:00:00", 3, "b2"))
    seats("s4", catalog, ("2024-03-05T08:00:00", 3, "a2"))
    seats("s8", catalog, ("2024-03-06T10:00:00", 7, "d1"))
    catalog.events("s6", "calls", [{"timestamp": "2024-03-15T02:00:00", "transaction_id": "c3"}])
    rate("2024-03-16T00:00:00")

    # Every open period gets a new event, so each is re-priced once more.
    for subscription, tid in (("s4", "a3"), ("s5", "b4"), ("s8", "d2")):
        seats(subscription, catalog, ("2024-03-16T05:00:00", 1, tid))
    catalog.events("s6", "calls", [{"timestamp": "2024-03-16T06:00:00", "transaction_id": "c4"}])
    rate("2024-03-17T00:00:00")
    incremental = fees_of(client, catalog.organization_id)

    rater.run("--as-of", "2024-03-17T00:00:00", "--full-refresh", "--no-tests")
    refreshed = fees_of(client, catalog.organization_id)
    return OpenPeriodRuns(incremental, refreshed)


def test_open_periods_rated_over_several_runs_equal_a_full_refresh(
    open_period_runs: OpenPeriodRuns,
) -> None:
    assert by_fee(open_period_runs.incremental) == by_fee(open_period_runs.refreshed)
    advance_fees = {
        fee["source_transaction_id"]: fee["amount_cents"]
        for fee in open_period_runs.incremental
        if fee["billable_metric_code"] == "seats" and fee["period_from"].month == 3
    }
    # s4 in March: a1 re-sent with 5 seats (10.00), a2 re-sent with 3 (6.00), a3 1 (2.00).
    assert (advance_fees["a1"], advance_fees["a2"], advance_fees["a3"]) == (1000, 600, 200)
    # s8: d1 re-sent with 7 seats.
    assert advance_fees["d1"] == 1400


class PlacedEventsCase:
    """An organization with one pay-in-advance seat charge (2.00 per seat), whose events can be
    removed behind the rating's back (as a failed ingest request's rollback would) to show which
    run placed them."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.client = warehouse.client()
        self.catalog = Catalog(self.client)
        self.customer = self.catalog.customer("c1")
        seat_metric = self.catalog.metric("seats", "sum_agg", "n")
        self.plan = self.catalog.plan("advance", amount_cents=1000)
        self.catalog.charge(
            self.plan, seat_metric, "standard", {"amount": "2"}, pay_in_advance=True
        )

    def delete_event(self, transaction_id: str) -> None:
        self.client.command(
            "ALTER TABLE events DELETE"
            " WHERE organization_id = {o:UUID} AND transaction_id = {t:String}",
            parameters={"o": self.catalog.organization_id, "t": transaction_id},
            settings={"mutations_sync": 2},
        )

    def placed_transactions(self) -> list[str]:
        return sorted(
            row[0]
            for row in self.client.query(
                "SELECT transaction_id FROM int_rating_pay_in_advance_events"
                " WHERE organization_id = {o:UUID}",
                parameters={"o": self.catalog.organization_id},
            ).result_rows
        )

    def advance_cents(self) -> dict[str | None, int]:
        return {
            fee["source_transaction_id"]: fee["amount_cents"]
            for fee in fees_of(self.client, self.catalog.organization_id)
            if fee["billable_metric_code"] == "seats"
        }


def test_open_periods_earlier_events_come_from_the_previous_runs_placed_events(
    warehouse: Warehouse, rater: Rater
) -> None:
    """An incremental run does not read an open period's earlier events again: it takes them as
    the previous run placed them, and reads only the events ingested since. Seen by removing the
    earlier events from the events table behind the rating's back: their fees stay until a full
    refresh. s10's open period begins a month before the latest rated one (s11's), so its new
    event comes through the read of the earlier months. The placement continues only the
    subscriptions its own run found: run alone with dbt, it reads both whole."""
    case = PlacedEventsCase(warehouse)
    # March 15th - April 14th is open on April 2nd; s11's April period is the latest rated.
    case.catalog.subscription(
        "s10", case.customer, case.plan, "2024-03-15", billing_time="anniversary"
    )
    case.catalog.subscription("s11", case.customer, case.plan, "2024-04-01")
    seats("s10", case.catalog, ("2024-03-20", 3, "e1"))
    seats("s11", case.catalog, ("2024-04-01T10:00:00", 2, "e2"))
    rater.run("--as-of", "2024-04-02T00:00:00", "--no-tests")

    case.delete_event("e1")
    case.delete_event("e2")
    seats("s10", case.catalog, ("2024-03-25", 1, "e3"))
    seats("s11", case.catalog, ("2024-04-02T05:00:00", 4, "e4"))
    rater.run("--as-of", "2024-04-03T00:00:00", "--no-tests")
    # s10: 3 seats at 2.00, then 1 more; s11: 2 seats, then 4 more.
    assert case.advance_cents() == {"e1": 600, "e2": 400, "e3": 200, "e4": 800}
    assert case.placed_transactions() == ["e1", "e2", "e3", "e4"]
    seats("s10", case.catalog, ("2024-03-26", 1, "e5"))
    seats("s11", case.catalog, ("2024-04-02T06:00:00", 1, "e6"))
    # The placement alone, beside the continued set the run above left: s10 and s11 read whole.
    models = ["int_rating_periods", "int_rating_pay_in_advance_events"]
    result = run_dbt(
        ["run", "--select", *models], warehouse.env, rater.target_path, "2024-04-03 00:00:00.000"
    )
    assert result.returncode == 0, result.stdout
    assert case.placed_transactions() == ["e3", "e4", "e5", "e6"]
    rater.run("--as-of", "2024-04-03T00:00:00", "--full-refresh", "--no-tests")
    assert case.advance_cents() == {"e3": 200, "e4": 800, "e5": 200, "e6": 200}
