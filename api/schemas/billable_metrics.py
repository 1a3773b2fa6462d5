"""Billable metrics: ``{"billable_metric": {...}}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from api.errors import FieldErrors
from api.schemas.common import Body, Code, LongText, RequiredText, ShortText, iso
from api.services.metric_expressions import InvalidExpression, translate
from api.storage.catalog import Row

AggregationType = Literal[
    "count_agg",
    "sum_agg",
    "max_agg",
    "unique_count_agg",
    "latest_agg",
    "weighted_sum_agg",
    "custom_agg",
]
# Lago carries units over periods only for aggregations where a running level makes sense.
RECURRING_AGGREGATIONS = {"sum_agg", "unique_count_agg", "weighted_sum_agg", "custom_agg"}
FIELDLESS_AGGREGATIONS = {"count_agg", "custom_agg"}
RoundingPrecision = Annotated[int, Field(ge=-15, le=15)]


class MetricFilterInput(Body):
    key: RequiredText
    values: Annotated[list[RequiredText], Field(min_length=1, max_length=1000)]


class BillableMetricInput(Body):
    name: RequiredText | None = None
    code: Code | None = None
    description: LongText | None = None
    aggregation_type: AggregationType | None = None
    field_name: ShortText | None = None
    expression: LongText | None = None
    recurring: bool | None = None
    rounding_function: Literal["round", "ceil", "floor"] | None = None
    rounding_precision: RoundingPrecision | None = None
    weighted_interval: Literal["seconds"] | None = None
    filters: Annotated[list[MetricFilterInput], Field(max_length=100)] | None = None

    def check_filters(self) -> None:
        keys = [f.key for f in self.filters or []]
        if len(set(keys)) != len(keys):
            errors = FieldErrors()
            errors.add("filters", "duplicated_keys")
            errors.raise_if_any()


class BillableMetricEnvelope(Body):
    billable_metric: BillableMetricInput


def validate_metric(row: Row) -> None:
    """The rules a complete metric (created or updated) obeys, with Lago's error codes."""
    errors = FieldErrors()
    for field in ("name", "code", "aggregation_type"):
        if not row.get(field):
            errors.add(field, "value_is_mandatory")
    aggregation = row.get("aggregation_type")
    if aggregation and aggregation not in FIELDLESS_AGGREGATIONS and not row.get("field_name"):
        errors.add("field_name", "value_is_mandatory")
    if aggregation == "custom_agg" and not row.get("expression"):
        errors.add("expression", "value_is_mandatory")
    if row.get("expression"):
        try:
            translate(row["expression"])
        except InvalidExpression:
            errors.add("expression", "invalid_expression")
    if aggregation == "weighted_sum_agg" and row.get("weighted_interval") != "seconds":
        errors.add("weighted_interval", "value_is_invalid")
    if row.get("recurring") and aggregation not in RECURRING_AGGREGATIONS:
        errors.add("recurring", "not_compatible_with_aggregation_type")
    if row.get("rounding_precision") is not None and not row.get("rounding_function"):
        errors.add("rounding_function", "value_is_mandatory")
    errors.raise_if_any()


class ExpressionEventInput(Body):
    code: ShortText | None = None
    timestamp: int | float | str | None = None
    properties: dict[str, Any] | None = None


class EvaluateExpressionInput(Body):
    """Lago's ``POST /billable_metrics/evaluate_expression`` body (no envelope)."""

    expression: LongText | None = None
    event: ExpressionEventInput | None = None


def expression_sql(row: Row) -> str | None:
    """The stored ClickHouse translation of a validated metric's expression (rating reads it)."""
    return translate(row["expression"]) if row.get("expression") else None


def metric_columns(body: BillableMetricInput) -> dict[str, Any]:
    """Storage columns for the fields the request sets."""
    sent = body.model_fields_set - {"filters", "recurring"}
    columns: dict[str, Any] = {field: getattr(body, field) for field in sent}
    if "recurring" in body.model_fields_set:
        columns["recurring"] = int(bool(body.recurring))
    if body.filters is not None:
        columns["filters"] = {f.key: list(dict.fromkeys(f.values)) for f in body.filters}
    if body.aggregation_type is not None and body.aggregation_type != "weighted_sum_agg":
        columns.setdefault("weighted_interval", None)
    return columns


def present_metric(row: Row) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "name": row["name"],
        "code": row["code"],
        "description": row["description"],
        "aggregation_type": row["aggregation_type"],
        "field_name": row["field_name"],
        "expression": row["expression"],
        "recurring": bool(row["recurring"]),
        "rounding_function": row["rounding_function"],
        "rounding_precision": row["rounding_precision"],
        "weighted_interval": row["weighted_interval"],
        "filters": [{"key": key, "values": list(values)} for key, values in row["filters"].items()],
        "created_at": iso(row["created_at"]),
    }
