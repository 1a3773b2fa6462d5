"""Current usage and the fee estimate read the views compiled for the catalog of the last rating
run (fct_current_usage_in_use, fct_current_pay_in_advance_usage_in_use, fct_estimated_fees_in_use)
while the catalog has gained no usage feature, charge model or rounding precision since, and the
whole views once it has.
The catalog read is warehouse-wide, so this runs in a database of its own, whose run sees a
standard arrears charge on a sum and a standard pay-in-advance charge on a count only."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

import warehouse.views
from api.deps import Caller
from api.routers.events import estimated_fee_rows
from api.schemas.events import EstimatedEvent
from api.services.usage import (
    UsageRow,
    current_usage_parameters,
    current_usage_rows,
    current_usage_sql,
)
from api.storage.catalog import CatalogStore
from meterhouse.orgs import Organization
from tests.conftest import Rater, Warehouse
from tests.rating.catalog import Catalog
from warehouse.migrate import migrate
from warehouse.views import COMPILED_OUT_FAILURE, RATED_ON_READ_SETTINGS, view_query

GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
    ]
}


# Each compiled current-usage view read, refused, then its whole view read.
BOTH_USAGE_VIEWS_FELL_BACK = [
    "fct_current_pay_in_advance_usage",
    "fct_current_pay_in_advance_usage_in_use",
    "fct_current_usage",
    "fct_current_usage_in_use",
]


@dataclass
class Rated:
    catalog: Catalog
    store: CatalogStore
    metric_ids: dict[str, uuid.UUID]
    customer_id: uuid.UUID
    event_time: str


def in_open_period() -> str:
    """An instant of the current calendar month, a minute ago when the month allows it."""
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return max(month_start, now - timedelta(minutes=1)).replace(tzinfo=None).isoformat()


@pytest.fixture(scope="module")
def rated(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rated]:
    """s1 on a plan with a standard arrears charge (sum) and a standard pay-in-advance charge
    (count), its events, and one rating run."""
    database = f"mh_usage_in_use_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    own = replace(warehouse, database=database)
    catalog = Catalog(own.client())
    customer_id = catalog.customer("c1")
    metric_ids = {
        "calls": catalog.metric("calls", "sum_agg", "value"),
        "seats": catalog.metric("seats", "count_agg"),
    }
    starter = catalog.plan("starter")
    catalog.charge(starter, metric_ids["calls"], "standard", {"amount": "0.5"})
    catalog.charge(starter, metric_ids["seats"], "standard", {"amount": "3"}, pay_in_advance=True)
    month_start = datetime.now(UTC).replace(day=1).date().isoformat()
    catalog.subscription("s1", customer_id, starter, month_start)
    at = in_open_period()
    catalog.events("s1", "calls", [{"timestamp": at, "properties": {"value": v}} for v in (4, 6)])
    catalog.events("s1", "seats", [{"timestamp": at}, {"timestamp": at}])
    Rater(own, tmp_path_factory.mktemp("dbt_target")).run("--no-tests")
    try:
        # No session id, as the billing API's client: current usage reads two views at once.
        store = CatalogStore(own.client(autogenerate_session_id=False))
        yield Rated(catalog, store, metric_ids, customer_id, at)
    finally:
        warehouse.client(database="").command(f"DROP DATABASE IF EXISTS `{database}`")


def view_rows(rated: Rated, view: str, subscription: str) -> list[tuple[Any, ...]]:
    parameters = current_usage_parameters([(rated.catalog.organization_id, "c1")], subscription)
    sql = current_usage_sql(view_query(rated.store.client, view))
    result = rated.store.client.query(sql, parameters=parameters, settings=RATED_ON_READ_SETTINGS)
    return result.result_rows


def usage_by_code(rated: Rated, subscription: str) -> dict[str, UsageRow]:
    rows = current_usage_rows(
        rated.store, rated.catalog.organization_id, ["c1"], subscription, pay_in_advance=True
    )
    return {row.billable_metric_code: row for row in rows}


def estimate_rows(rated: Rated, view: str, subscription: str) -> list[tuple[Any, ...]]:
    """What a fee estimate view's stored query gives for one more seat of ``subscription``."""
    parameters = {
        "organization_id": rated.catalog.organization_id,
        "external_subscription_id": subscription,
        "code": "seats",
        "transaction_id": "estimate",
        "property_keys": [],
        "property_values": [],
        "precise_total_amount_cents": "",
    }
    sql = f"SELECT * FROM ({view_query(rated.store.client, view)})"
    result = rated.store.client.query(sql, parameters=parameters, settings=RATED_ON_READ_SETTINGS)
    return result.result_rows


def estimate_a_seat(rated: Rated, subscription: str) -> list[dict[str, Any]]:
    caller = Caller(Organization(rated.catalog.organization_id, "org"), "test")
    event = EstimatedEvent(code="seats", external_subscription_id=subscription)
    return estimated_fee_rows(rated.store, caller, event, {})


@pytest.fixture
def views_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The views whose stored query the compiled-or-whole reads ask for, in order."""
    read: list[str] = []
    stored_query = warehouse.views.view_query

    def recording(client: Any, name: str) -> str:
        read.append(name)
        return stored_query(client, name)

    monkeypatch.setattr(warehouse.views, "view_query", recording)
    return read


def test_the_compiled_views_give_the_whole_views_rows(rated: Rated) -> None:
    for view in ("fct_current_usage", "fct_current_pay_in_advance_usage"):
        whole = view_rows(rated, view, "s1")
        assert whole, view
        assert view_rows(rated, f"{view}_in_use", "s1") == whole
    whole_estimate = estimate_rows(rated, "fct_estimated_fees", "s1")
    assert whole_estimate
    assert estimate_rows(rated, "fct_estimated_fees_in_use", "s1") == whole_estimate
    # What compiling leaves out: the whole views are about twice as long.
    for view in ("fct_current_usage", "fct_current_pay_in_advance_usage", "fct_estimated_fees"):
        whole = view_query(rated.store.client, view)
        assert len(view_query(rated.store.client, f"{view}_in_use")) < 0.7 * len(whole)


def test_current_usage_reads_the_compiled_views(rated: Rated, views_read: list[str]) -> None:
    usage = usage_by_code(rated, "s1")
    # 4 + 6 calls at 0.50; 2 seats at 3.00, paid in advance.
    assert (usage["calls"].units, usage["calls"].amount_cents) == (Decimal(10), 500)
    assert (usage["seats"].units, usage["seats"].amount_cents) == (Decimal(2), 600)
    assert sorted(views_read) == [
        "fct_current_pay_in_advance_usage_in_use",
        "fct_current_usage_in_use",
    ]


def test_the_estimate_reads_its_compiled_view(rated: Rated, views_read: list[str]) -> None:
    [fee] = estimate_a_seat(rated, "s1")
    assert (fee["units"], fee["amount_cents"]) == (Decimal(1), 300)  # a third seat at 3.00
    assert views_read == ["fct_estimated_fees_in_use"]


@pytest.fixture(scope="module")
def gained(rated: Rated) -> Rated:
    """After the run, without another: s2 on a plan whose charges need what the run compiled
    out (a graduated arrears charge on a metric rounded at 1 decimal, a package pay-in-advance
    charge), and its events: 12.26 GB and two seats."""
    catalog = rated.catalog
    storage = catalog.metric("storage", "sum_agg", "gb", rounding_function="round",
                             rounding_precision=1)  # fmt: skip
    growth = catalog.plan("growth")
    catalog.charge(growth, storage, "graduated", GRADUATED)
    package = {"amount": "3", "package_size": 2, "free_units": 0}
    catalog.charge(growth, rated.metric_ids["seats"], "package", package, pay_in_advance=True)
    month_start = datetime.now(UTC).replace(day=1).date().isoformat()
    catalog.subscription("s2", rated.customer_id, growth, month_start)
    events = [{"timestamp": rated.event_time, "properties": {"gb": gb}} for gb in ("4.26", "8")]
    catalog.events("s2", "storage", events)
    catalog.events("s2", "seats", [{"timestamp": rated.event_time}] * 2)
    return rated


def test_a_compiled_view_refuses_what_the_catalog_gained_since_the_run(gained: Rated) -> None:
    for view in ("fct_current_usage_in_use", "fct_current_pay_in_advance_usage_in_use"):
        with pytest.raises(DatabaseError, match=COMPILED_OUT_FAILURE):
            view_rows(gained, view, "s2")
    # And so does the estimate's: s2's seats are priced by packages.
    with pytest.raises(DatabaseError, match=COMPILED_OUT_FAILURE):
        estimate_rows(gained, "fct_estimated_fees_in_use", "s2")


def test_current_usage_then_reads_the_whole_views(gained: Rated, views_read: list[str]) -> None:
    usage = usage_by_code(gained, "s2")
    # 4.26 + 8 = 12.26 GB, rounded at 1 decimal: 12.3. Graduated: 10 x 1 in the first tier,
    # then 12.3 - 11 + 1 = 2.3 x 0.5 = 1.15 in the second: 11.15.
    assert (usage["storage"].units, usage["storage"].amount_cents) == (Decimal("12.3"), 1115)
    # Packages of 2 seats at 3.00, paid in advance: the 1st seat opens one (3.00), the 2nd
    # fills it.
    assert (usage["seats"].units, usage["seats"].amount_cents) == (Decimal(2), 300)
    assert sorted(views_read) == BOTH_USAGE_VIEWS_FELL_BACK


def test_the_estimate_then_reads_its_whole_view(gained: Rated, views_read: list[str]) -> None:
    [fee] = estimate_a_seat(gained, "s2")
    assert (fee["units"], fee["amount_cents"]) == (Decimal(1), 300)  # a 3rd seat opens a package
    assert views_read == ["fct_estimated_fees_in_use", "fct_estimated_fees"]


def test_only_the_guards_a_subscription_meets_send_it_to_the_whole_views(
    gained: Rated, views_read: list[str]
) -> None:
    # The usage guards are warehouse-wide: the new field name (gb) fails every query of the
    # compiled arrears view. The charge model guards fail only the rows that need them: s1's
    # pay-in-advance usage still comes from its compiled view.
    usage = usage_by_code(gained, "s1")
    assert (usage["calls"].amount_cents, usage["seats"].amount_cents) == (500, 600)
    assert sorted(views_read) == [
        "fct_current_pay_in_advance_usage_in_use",
        "fct_current_usage",
        "fct_current_usage_in_use",
    ]


def test_a_recurring_pay_in_advance_charge_added_since_the_run_is_renewed_by_the_whole_view(
    gained: Rated, views_read: list[str]
) -> None:
    # Last: the run compiled neither unique counts nor renewals in advance, so from now on every
    # compiled pay-in-advance usage query fails. s3, subscribed last month on a plan with a
    # recurring pay-in-advance seat charge, is read from the whole view, which renews the two
    # members carried into this month: 2 x 5.00, though none joined this month.
    catalog = gained.catalog
    members = catalog.metric("members", "unique_count_agg", "member", recurring=True)
    team = catalog.plan("team")
    catalog.charge(team, members, "standard", {"amount": "5"}, pay_in_advance=True)
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    catalog.subscription("s3", gained.customer_id, team, last_month.date().isoformat())
    joined = (last_month + timedelta(days=3)).replace(tzinfo=None).isoformat()
    catalog.events(
        "s3", "members", [{"timestamp": joined, "properties": {"member": m}} for m in ("a", "b")]
    )
    usage = usage_by_code(gained, "s3")
    assert (usage["members"].units, usage["members"].amount_cents) == (Decimal(2), 1000)
    assert sorted(views_read) == BOTH_USAGE_VIEWS_FELL_BACK
