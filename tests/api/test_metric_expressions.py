"""Lago expressions translated to ClickHouse SQL, evaluated by the warehouse on sample events,
directly and through the billing API's ``POST /billable_metrics/evaluate_expression``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from api.services import metric_expressions
from api.services.metric_expressions import InvalidExpression, translate
from tests.api.conftest import Tenant

# 2024-03-05T10:00:00Z
TIMESTAMP = 1709632800


def evaluate(client: Client, expression: str, properties: dict[str, str]) -> str | None:
    return metric_expressions.evaluate(
        client, expression, code="hours", timestamp_ms=TIMESTAMP * 1000, properties=properties
    )


@pytest.mark.parametrize(
    ("expression", "properties", "value"),
    [
        # 5000 s / 3600 = 1.3888... rounded half-up to 2 decimals.
        (
            "round((event.properties.ended_at - event.properties.started_at) / 3600, 2)",
            {"started_at": "1700000000", "ended_at": "1700005000"},
            "1.39",
        ),
        ("round(2.5)", {}, "3"),
        ("round(-2.5)", {}, "-3"),
        ("ceil(12.351, 1)", {}, "12.4"),
        ("FLOOR(-1.5)", {}, "-2"),
        ("Round(123.456, -2)", {}, "100"),
        # * and / before + and -, unary minus on the atom: (-2 * 3) + (10 / 4) = -3.5.
        ("-2 * 3 + 10 / 4", {}, "-3.5"),
        ("1 - 2 - 3", {}, "-4"),
        ("10 / 3", {}, "3.333333333333"),
        ("min(3, 1.5, 2) + max(1, event.properties.n)", {"n": "4"}, "5.5"),
        ("event.timestamp - 1709632000", {}, "800"),
        ("concat(event.properties.user, '-', event.code, '-', 1.50)", {"user": "u"}, "u-hours-1.5"),
        ("event.properties.gb", {"gb": "2.50"}, "2.50"),
        # Where Lago fails the event, the event has no value.
        ("event.properties.gb * 2", {}, None),
        ("event.properties.gb * 2", {"gb": "lots"}, None),
        ("event.properties.gb / event.properties.zero", {"gb": "1", "zero": "0"}, None),
    ],
)
def test_expressions_evaluate_as_lago_does(
    admin_client: Client, expression: str, properties: dict[str, str], value: str | None
) -> None:
    assert evaluate(admin_client, expression, properties) == value


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "1 +",
        "(1 + 2",
        "round(1, 2, 3)",
        "round(1, event.properties.digits)",
        "round(1, 13)",
        "sqrt(4)",
        "rOUND(1)",
        "event.props.x",
        "event.properties.1x",
        "'unterminated",
        "1.1.1",
        "1; DROP TABLE events",
        "123456789012345678901234567 + 1",
        "0.1234567890123",
    ],
)
def test_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidExpression):
        translate(expression)


def test_string_literals_stay_text(admin_client: Client) -> None:
    # Literals reach the SQL hex-encoded: SQL syntax and placeholders inside them stay plain text.
    text = "x\\) OR 1=1 -- __PROPERTIES__ \\"
    assert evaluate(admin_client, f"concat('{text}')", {}) == text


def evaluate_over_api(api_url: str, tenant: Tenant, body: Any) -> httpx.Response:
    # The pinned Lago client's evaluate_expression sends no body: the route is called directly.
    return httpx.post(
        f"{api_url}/api/v1/billable_metrics/evaluate_expression",
        json=body,
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=30,
    )


def test_evaluate_expression_route(api_url: str, tenant: Tenant) -> None:
    event = {
        "code": "storage",
        "timestamp": "2024-03-05T10:00:00Z",
        "properties": {"gb": 2.5, "hours": "3", "region": "eu"},
    }
    expression = "concat(event.code, '-', event.properties.region, '-', event.timestamp)"
    response = evaluate_over_api(api_url, tenant, {"expression": expression, "event": event})
    assert response.status_code == 200, response.text
    assert response.json() == {"expression_result": {"value": f"storage-eu-{TIMESTAMP}"}}
    # A float property is read as ingestion stores it; 2.5 GB x 3 h.
    product = {"expression": "event.properties.gb * event.properties.hours", "event": event}
    assert evaluate_over_api(api_url, tenant, product).json()["expression_result"] == {
        "value": "7.5"
    }
    # Unix seconds as well as ISO 8601, as events take them.
    seconds = {"expression": "event.timestamp", "event": {"timestamp": TIMESTAMP}}
    assert evaluate_over_api(api_url, tenant, seconds).json()["expression_result"] == {
        "value": str(TIMESTAMP)
    }


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"event": {"properties": {}}}, {"expression": ["value_is_mandatory"]}),
        ({"expression": "sqrt(4)"}, {"expression": ["invalid_expression"]}),
        ({"expression": "1", "event": {"timestamp": "yesterday"}},
         {"event.timestamp": ["invalid_timestamp"]}),
        ({"expression": "event.properties.gb * 2", "event": {"properties": {"gb": "lots"}}},
         {"event": ["expression_evaluation_failed"]}),
    ],
)  # fmt: skip
def test_evaluate_expression_errors(
    api_url: str, tenant: Tenant, body: dict[str, Any], details: dict[str, list[str]]
) -> None:
    response = evaluate_over_api(api_url, tenant, body)
    assert response.status_code == 422
    assert response.json()["error_details"] == details


def test_evaluate_expression_needs_an_api_key(api_url: str) -> None:
    response = httpx.post(
        f"{api_url}/api/v1/billable_metrics/evaluate_expression", json={"expression": "1"}
    )
    assert response.status_code == 401
