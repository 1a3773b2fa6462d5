"""Lago expressions translated to ClickHouse SQL, evaluated by the warehouse on sample events."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from api.services.metric_expressions import InvalidExpression, translate

# 2024-03-05T10:00:00Z
TIMESTAMP = 1709632800


def evaluate(client: Client, expression: str, properties: dict[str, str]) -> str | None:
    sql = (
        translate(expression)
        .replace("__PROPERTIES__", "mapFromArrays({keys:Array(String)}, {values:Array(String)})")
        .replace("__TIMESTAMP__", "toDateTime64({seconds:Int64}, 3, 'UTC')")
        .replace("__CODE__", "'hours'")
    )
    value = client.query(
        f"SELECT {sql}",
        parameters={
            "keys": list(properties),
            "values": list(properties.values()),
            "seconds": TIMESTAMP,
        },
    ).result_rows[0][0]
    assert value is None or isinstance(value, str)
    return value


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
