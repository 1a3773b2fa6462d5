"""Lago's analytics endpoints, called with lago-python-client against the billing API started as
a user starts it, over the marts built on the revenue scenario."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from lago_python_client.client import Client as LagoClient
from lago_python_client.exceptions import LagoApiError

from tests.analytics.conftest import AnalyticsDatabase
from tests.support.processes import ServiceProcess, free_port, meterhouse_command


@pytest.fixture(scope="module")
def api_url(
    analytics: AnalyticsDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    with ServiceProcess(
        meterhouse_command("api", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/health",
        env=analytics.env,
        log_path=tmp_path_factory.mktemp("analytics_api") / "api.log",
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def lago(analytics: AnalyticsDatabase, api_url: str) -> LagoClient:
    return LagoClient(api_key=analytics.api_key, api_url=api_url)


def months(items: list[Any], *fields: str) -> dict[str, tuple[object, ...]]:
    return {str(item.month)[:7]: tuple(getattr(item, field) for field in fields) for item in items}


def test_gross_revenue(lago: LagoClient) -> None:
    found = lago.gross_revenues.find_all({"currency": "USD"})["gross_revenues"]
    assert found[0].month == "2024-02-01T00:00:00.000Z"
    assert months(found, "amount_cents", "invoices_count", "currency") == {
        "2024-02": (18_000, 2, "USD"),  # 100 + 100 - 20 refunded
        "2024-03": (65_000, 2, "USD"),
        "2024-04": (32_000, 1, "USD"),
    }
    alice = lago.gross_revenues.find_all({"external_customer_id": "alice"})["gross_revenues"]
    assert months(alice, "amount_cents") == {"2024-02": (8_000,), "2024-03": (30_000,)}
    assert lago.gross_revenues.find_all({"currency": "EUR"})["gross_revenues"] == []


def test_mrr(lago: LagoClient) -> None:
    found = lago.mrrs.find_all()["mrrs"]
    assert months(found, "amount_cents") == {
        "2024-01": (20_000,),
        "2024-02": (65_000,),
        "2024-03": (72_000,),
        "2024-04": (72_000,),
    }
    carol = lago.mrrs.find_all({"external_customer_id": "carol"})["mrrs"]
    assert months(carol, "amount_cents") == {
        "2024-02": (35_000,),
        "2024-03": (32_000,),
        "2024-04": (32_000,),
    }


def test_invoiced_usage(lago: LagoClient) -> None:
    found = lago.invoiced_usages.find_all()["invoiced_usages"]
    assert [(str(u.month)[:7], u.code, u.amount_cents) for u in found] == [
        ("2024-03", "api_calls", 5_000),
        ("2024-04", "api_calls", 2_000),
    ]


def test_overdue_balance(lago: LagoClient, analytics: AnalyticsDatabase) -> None:
    (overdue,) = lago.overdue_balances.find_all()["overdue_balances"]
    assert (overdue.month, overdue.amount_cents, overdue.currency) == (
        "2024-03-01T00:00:00.000Z",
        65_000,
        "USD",
    )
    invoices = analytics.scenario.invoices
    assert set(overdue.lago_invoice_ids) == {str(invoices["carol_mar"]), str(invoices["alice_mar"])}


def test_invoice_collection(lago: LagoClient) -> None:
    found = lago.invoice_collections.find_all()["invoice_collections"]
    assert [
        (str(c.month)[:7], c.payment_status, c.invoices_count, c.amount_cents) for c in found
    ] == [
        ("2024-02", "succeeded", 2, 20_000),
        ("2024-03", "pending", 2, 65_000),
        ("2024-04", "pending", 1, 32_000),
    ]


def test_months_window_counts_back_from_the_current_month(lago: LagoClient) -> None:
    # The scenario is in 2024: a one-month window ending now holds none of it.
    assert lago.mrrs.find_all({"months": 1})["mrrs"] == []
    assert len(lago.mrrs.find_all({"months": 1200})["mrrs"]) == 4


def test_bad_input_is_a_4xx_with_a_machine_readable_body(lago: LagoClient, api_url: str) -> None:
    with pytest.raises(LagoApiError) as error:
        lago.gross_revenues.find_all({"currency": "usd!"})
    assert error.value.status_code == 422
    response = httpx.get(
        f"{api_url}/api/v1/analytics/mrr", params={"months": "0"},
        headers={"Authorization": f"Bearer {lago.api_key}"},
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["code"] == "validation_errors"
    assert httpx.get(f"{api_url}/api/v1/analytics/mrr").status_code == 401
