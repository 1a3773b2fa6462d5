"""A warehouse that no rating run or analytics build has reached yet, as a new deployment starts:
what needs the dbt models answers 503 in the billing API, with a machine-readable code and the
command that builds them (never a 500), and the commands that read the rated fees name the
run they need."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lago_python_client.client import Client as LagoClient
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    BillableMetric,
    Charge,
    Charges,
    Customer,
    Event,
    Plan,
    Subscription,
)

from meterhouse.orgs import create_organization
from tests.conftest import Warehouse
from tests.support.processes import (
    ServiceProcess,
    failed_in_one_line,
    free_port,
    meterhouse_command,
)
from warehouse.client import get_client


@pytest.fixture(scope="module")
def unbuilt_env(warehouse: Warehouse, unbuilt_database: str) -> dict[str, str]:
    """The environment of the processes that use that database."""
    return {**warehouse.env, "MH_WAREHOUSE_DATABASE": unbuilt_database}


@pytest.fixture(scope="module")
def lago(
    warehouse: Warehouse, unbuilt_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LagoClient]:
    """A Lago client of an organization of that database, through the billing API."""
    client = get_client(warehouse.settings(), database=unbuilt_env["MH_WAREHOUSE_DATABASE"])
    _, api_key = create_organization(client, "New")
    port = free_port()
    with ServiceProcess(
        meterhouse_command("api", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/health",
        env=unbuilt_env,
        log_path=tmp_path_factory.mktemp("unbuilt_api") / "api.log",
    ):
        yield LagoClient(api_key=api_key, api_url=f"http://127.0.0.1:{port}")


def unavailable(call: Callable[[], object], code: str) -> None:
    with pytest.raises(LagoApiError) as error:
        call()
    assert error.value.status_code == 503
    assert error.value.response["code"] == code


def test_usage_and_estimates_before_the_first_rating_run(lago: LagoClient) -> None:
    created = lago.billable_metrics.create(
        BillableMetric(name="Calls", code="calls", aggregation_type="count_agg")
    )
    assert created is not None
    charge = Charge(
        billable_metric_id=str(created.lago_id), charge_model="standard", pay_in_advance=True,
        invoiceable=True, properties={"amount": "1"},
    )  # fmt: skip
    lago.plans.create(
        Plan(name="Plan", code="plan", interval="monthly", amount_cents=1000,
             amount_currency="USD", charges=Charges(__root__=[charge]))
    )  # fmt: skip
    lago.customers.create(Customer(external_id="cust", name="Cust", currency="USD"))
    lago.subscriptions.create(
        Subscription(external_customer_id="cust", plan_code="plan", external_id="sub")
    )
    event = Event(
        transaction_id=str(uuid.uuid4()), external_subscription_id="sub", code="calls",
        timestamp=int(time.time()), properties={},
    )  # fmt: skip
    lago.events.create(event)  # ingesting needs no rating run
    unavailable(lambda: lago.customers.current_usage("cust", "sub"), "usage_not_available")
    unavailable(lambda: lago.customers.past_usage("cust", "sub"), "usage_not_available")
    unavailable(lambda: lago.events.estimate_fees(event), "usage_not_available")


def test_analytics_before_the_marts_are_built(lago: LagoClient) -> None:
    # Not an empty list, which would pass for an organization without revenue.
    for endpoint in (
        lago.gross_revenues,
        lago.mrrs,
        lago.invoiced_usages,
        lago.overdue_balances,
        lago.invoice_collections,
    ):
        unavailable(endpoint.find_all, "analytics_not_available")


@pytest.mark.parametrize(
    "command", [("rate", "analytics", "--no-progress"), ("bill", "--pending")], ids=" ".join
)
def test_commands_that_need_the_rated_fees_name_the_run_first(
    unbuilt_env: dict[str, str], command: tuple[str, ...], tmp_path: Path
) -> None:
    stderr = failed_in_one_line(command, unbuilt_env, tmp_path)
    assert "no rating run yet" in stderr
    assert "`meterhouse rate run` first" in stderr
