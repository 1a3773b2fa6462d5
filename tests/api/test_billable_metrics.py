from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client as WarehouseClient
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BillableMetric, BillableMetricFilter
from lago_python_client.models.billable_metric import BillableMetricFilters

from api.services.metric_expressions import translate
from tests.api.conftest import Tenant


def storage_metric(code: str = "storage") -> BillableMetric:
    return BillableMetric(
        name="Storage",
        code=code,
        aggregation_type="sum_agg",
        field_name="gb",
        recurring=True,
        rounding_function="ceil",
        rounding_precision=2,
        filters=BillableMetricFilters(
            __root__=[BillableMetricFilter(key="region", values=["eu", "us"])]
        ),
    )


def test_metric_lifecycle(tenant: Tenant) -> None:
    created = tenant.lago.billable_metrics.create(storage_metric())
    assert created is not None
    assert (created.code, created.aggregation_type, created.field_name) == (
        "storage",
        "sum_agg",
        "gb",
    )
    assert created.recurring is True and created.rounding_precision == 2
    assert [(f.key, f.values) for f in created.filters.__root__] == [("region", ["eu", "us"])]

    updated = tenant.lago.billable_metrics.update(
        BillableMetric(name="Storage GB", aggregation_type="max_agg", recurring=False), "storage"
    )
    assert (updated.name, updated.aggregation_type, updated.recurring) == (
        "Storage GB",
        "max_agg",
        False,
    )
    assert tenant.lago.billable_metrics.find("storage").name == "Storage GB"
    listed = tenant.lago.billable_metrics.find_all()
    assert [m.code for m in listed["billable_metrics"]] == ["storage"]
    tenant.lago.billable_metrics.destroy("storage")
    with pytest.raises(LagoApiError) as missing:
        tenant.lago.billable_metrics.find("storage")
    assert missing.value.response["code"] == "billable_metric_not_found"


@pytest.mark.parametrize(
    ("metric", "details"),
    [
        (
            BillableMetric(code="x"),
            {"name": ["value_is_mandatory"], "aggregation_type": ["value_is_mandatory"]},
        ),
        (
            BillableMetric(name="n", code="x", aggregation_type="sum_agg"),
            {"field_name": ["value_is_mandatory"]},
        ),
        (
            BillableMetric(name="n", code="x", aggregation_type="count_agg", recurring=True),
            {"recurring": ["not_compatible_with_aggregation_type"]},
        ),
        (
            BillableMetric(name="n", code="x", aggregation_type="weighted_sum_agg", field_name="v"),
            {"weighted_interval": ["value_is_invalid"]},
        ),
        (
            BillableMetric(name="n", code="x", aggregation_type="median_agg"),
            {"aggregation_type": ["value_is_invalid"]},
        ),
        (
            BillableMetric(
                name="n",
                code="x",
                aggregation_type="sum_agg",
                field_name="v",
                expression="round(event.properties.seconds / 60",
            ),
            {"expression": ["invalid_expression"]},
        ),
        (
            BillableMetric(
                name="n",
                code="x",
                aggregation_type="sum_agg",
                field_name="v",
                expression="sqrt(event.properties.area)",
            ),
            {"expression": ["invalid_expression"]},
        ),
    ],
)
def test_metric_validation(tenant: Tenant, metric: BillableMetric, details: dict) -> None:
    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.billable_metrics.create(metric)
    assert invalid.value.status_code == 422
    assert invalid.value.response["error_details"] == details


def test_an_expression_is_stored_with_its_translation(
    tenant: Tenant, admin_client: WarehouseClient
) -> None:
    expression = "round((event.properties.ended_at - event.properties.started_at) / 3600, 2)"
    created = tenant.lago.billable_metrics.create(
        BillableMetric(
            name="Hours", code="hours", aggregation_type="sum_agg", field_name="hours",
            expression=expression,
        )
    )  # fmt: skip
    assert created is not None and created.expression == expression
    stored = admin_client.query(
        "SELECT expression_sql FROM billable_metrics FINAL WHERE id = {id:UUID}",
        parameters={"id": created.lago_id},
    ).result_rows
    assert stored == [(translate(expression),)]

    with pytest.raises(LagoApiError) as invalid:
        tenant.lago.billable_metrics.update(BillableMetric(expression="1 +"), "hours")
    assert invalid.value.response["error_details"] == {"expression": ["invalid_expression"]}
    assert tenant.lago.billable_metrics.find("hours").expression == expression

    tenant.lago.billable_metrics.update(BillableMetric(expression=""), "hours")
    stored = admin_client.query(
        "SELECT expression, expression_sql FROM billable_metrics FINAL WHERE id = {id:UUID}",
        parameters={"id": created.lago_id},
    ).result_rows
    assert stored == [("", None)]


def test_metric_code_is_unique_per_organization(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.billable_metrics.create(storage_metric("calls"))
    with pytest.raises(LagoApiError) as duplicate:
        tenant.lago.billable_metrics.create(storage_metric("calls"))
    assert duplicate.value.response["error_details"] == {"code": ["value_already_exist"]}
    other_tenant.lago.billable_metrics.create(storage_metric("calls"))


def test_metric_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.billable_metrics.create(storage_metric("private"))
    for call in (
        lambda: other_tenant.lago.billable_metrics.find("private"),
        lambda: other_tenant.lago.billable_metrics.update(BillableMetric(name="x"), "private"),
        lambda: other_tenant.lago.billable_metrics.destroy("private"),
    ):
        with pytest.raises(LagoApiError) as hidden:
            call()
        assert hidden.value.status_code == 404
    assert other_tenant.lago.billable_metrics.find_all()["billable_metrics"] == []
