from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BillableMetric, BillableMetricFilter, Charge, Plan, Tax
from lago_python_client.models.billable_metric import BillableMetricFilters
from lago_python_client.models.charge import ChargeFilter, ChargeFilters, Charges
from lago_python_client.models.minimum_commitment import MinimumCommitment
from lago_python_client.models.usage_threshold import UsageThreshold, UsageThresholds

from tests.api.conftest import Tenant


def create_metric(tenant: Tenant, code: str = "api_calls", **fields: Any) -> str:
    metric = tenant.lago.billable_metrics.create(
        BillableMetric(
            name=code,
            code=code,
            aggregation_type=fields.pop("aggregation_type", "sum_agg"),
            field_name="value",
            filters=BillableMetricFilters(
                __root__=[BillableMetricFilter(key="region", values=["eu", "us"])]
            ),
            **fields,
        )
    )
    assert metric is not None
    return metric.lago_id


def plan_with(charges: list[Charge], code: str = "startup", **fields: Any) -> Plan:
    return Plan(
        name="Startup",
        code=code,
        interval=fields.pop("interval", "monthly"),
        amount_cents=fields.pop("amount_cents", 4900),
        amount_currency="EUR",
        charges=Charges(__root__=charges),
        **fields,
    )


def lago_error(call: Any) -> LagoApiError:
    with pytest.raises(LagoApiError) as raised:
        call()
    return raised.value


def test_plan_with_every_charge_model(tenant: Tenant) -> None:
    tenant.lago.taxes.create(Tax(name="VAT", code="vat", rate=20.0))
    metric_id = create_metric(tenant)
    ranges = [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "2"},
    ]
    charges = [
        Charge(
            billable_metric_id=metric_id,
            charge_model="standard",
            properties={"amount": "0.25", "grouped_by": ["region"]},
            tax_codes=["vat"],
            min_amount_cents=1000,
            filters=ChargeFilters(
                __root__=[
                    ChargeFilter(
                        invoice_display_name="EU",
                        properties={"amount": "0.30"},
                        values={"region": ["eu"]},
                    )
                ]
            ),
        ),
        Charge(
            billable_metric_id=metric_id,
            charge_model="graduated",
            properties={"graduated_ranges": ranges},
        ),
        Charge(
            billable_metric_id=metric_id,
            charge_model="volume",
            properties={"volume_ranges": ranges},
        ),
        Charge(
            billable_metric_id=metric_id,
            charge_model="package",
            properties={"amount": "5", "package_size": 100, "free_units": 10},
        ),
        Charge(
            billable_metric_id=metric_id,
            charge_model="percentage",
            pay_in_advance=True,
            invoiceable=False,
            properties={"rate": "2.5", "fixed_amount": "0.1", "free_units_per_events": 3},
        ),
        Charge(
            billable_metric_id=metric_id,
            charge_model="graduated_percentage",
            properties={
                "graduated_percentage_ranges": [
                    {"from_value": 0, "to_value": 0.1, "rate": "1", "flat_amount": "0"},
                    {"from_value": 0.1, "to_value": None, "rate": "0.5", "flat_amount": "0"},
                ]
            },
        ),
        Charge(billable_metric_id=metric_id, charge_model="dynamic", properties={}),
    ]
    plan = tenant.lago.plans.create(
        plan_with(
            charges,
            interval="yearly",
            bill_charges_monthly=True,
            trial_period=14.0,
            tax_codes=["vat"],
            minimum_commitment=MinimumCommitment(amount_cents=100_000),
            usage_thresholds=UsageThresholds(
                __root__=[
                    UsageThreshold(amount_cents=10_000),
                    UsageThreshold(amount_cents=5_000, recurring=True),
                ]
            ),
        )
    )
    assert plan is not None
    assert (plan.interval, plan.bill_charges_monthly, plan.trial_period) == ("yearly", True, 14.0)
    assert plan.minimum_commitment.amount_cents == 100_000
    assert sorted(t.amount_cents for t in plan.usage_thresholds.__root__) == [5_000, 10_000]
    got = plan.charges.__root__
    assert [c.charge_model for c in got] == [c.charge_model for c in charges]
    standard = got[0]
    assert standard.properties == {"amount": "0.25", "grouped_by": ["region"]}
    assert standard.billable_metric_code == "api_calls" and standard.min_amount_cents == 1000
    assert [t.code for t in standard.taxes.__root__] == ["vat"]
    only_filter = standard.filters.__root__[0]
    assert (only_filter.values, only_filter.properties) == ({"region": ["eu"]}, {"amount": "0.30"})
    assert got[3].properties == {"amount": "5", "package_size": 100, "free_units": 10}
    assert got[4].pay_in_advance is True and got[4].invoiceable is False

    fetched = tenant.lago.plans.find("startup")
    assert fetched.dict() == plan.dict()


def test_plan_update_keeps_charge_ids_and_records_history(
    tenant: Tenant, admin_client: Any
) -> None:
    metric_id = create_metric(tenant)
    plan = tenant.lago.plans.create(
        plan_with(
            [
                Charge(
                    billable_metric_id=metric_id,
                    charge_model="standard",
                    properties={"amount": "1"},
                ),
                Charge(
                    billable_metric_id=metric_id,
                    charge_model="standard",
                    properties={"amount": "2"},
                ),
            ]
        )
    )
    kept, dropped = plan.charges.__root__
    updated = tenant.lago.plans.update(
        Plan(
            name="Startup v2",
            amount_cents=5900,
            charges=Charges(__root__=[Charge(id=kept.lago_id, properties={"amount": "1.5"})]),
        ),
        "startup",
    )
    assert (updated.name, updated.amount_cents) == ("Startup v2", 5900)
    assert [(c.lago_id, c.properties) for c in updated.charges.__root__] == [
        (kept.lago_id, {"amount": "1.5"})
    ]
    # Every version of the price stays queryable: which amount applied when.
    history = admin_client.query(
        "SELECT properties, is_deleted, changed_by, updated_at FROM charges_history"
        " WHERE organization_id = {o:UUID} AND id = {c:UUID} ORDER BY version",
        parameters={"o": tenant.organization_id, "c": kept.lago_id},
    ).result_rows
    assert [row[:2] for row in history] == [('{"amount":"1"}', 0), ('{"amount":"1.5"}', 0)]
    # Who changed it (the API key, by its hash prefix) and when.
    key_hash = hashlib.sha256(tenant.api_key.encode()).hexdigest()
    assert {row[2] for row in history} == {f"api_key:{key_hash[:16]}"}
    assert history[0][3] < history[1][3]
    dropped_versions = admin_client.query(
        "SELECT is_deleted FROM charges_history WHERE id = {c:UUID} ORDER BY version",
        parameters={"c": dropped.lago_id},
    ).result_rows
    assert dropped_versions == [(0,), (1,)]


@pytest.mark.parametrize(
    ("charge", "details"),
    [
        (
            {"charge_model": "standard", "properties": {"amount": 10}},
            {"amount": ["invalid_amount"]},
        ),
        (
            {"charge_model": "standard", "properties": {"amount": "-1"}},
            {"amount": ["invalid_amount"]},
        ),
        (
            {"charge_model": "package", "properties": {"amount": "1", "package_size": 0}},
            {"package_size": ["invalid_package_size"]},
        ),
        (
            {
                "charge_model": "graduated",
                "properties": {
                    "graduated_ranges": [
                        {
                            "from_value": 0,
                            "to_value": 10,
                            "per_unit_amount": "1",
                            "flat_amount": "0",
                        },
                        {
                            "from_value": 12,
                            "to_value": None,
                            "per_unit_amount": "1",
                            "flat_amount": "0",
                        },
                    ]
                },
            },
            {"graduated_ranges": ["invalid_graduated_ranges"]},
        ),
        (
            {"charge_model": "volume", "properties": {"volume_ranges": []}},
            {"volume_ranges": ["missing_volume_ranges"]},
        ),
        (
            {
                "charge_model": "percentage",
                "properties": {"rate": "x", "free_units_per_events": -1},
            },
            {"rate": ["invalid_rate"], "free_units_per_events": ["invalid_free_units_per_events"]},
        ),
        (
            {
                "charge_model": "volume",
                "pay_in_advance": True,
                "properties": {
                    "volume_ranges": [
                        {
                            "from_value": 0,
                            "to_value": None,
                            "per_unit_amount": "1",
                            "flat_amount": "0",
                        }
                    ]
                },
            },
            {"charge_model": ["invalid_aggregation_type_or_charge_model"]},
        ),
        (
            {
                "charge_model": "standard",
                "properties": {"amount": "1"},
                "filters": [{"properties": {"amount": "1"}, "values": {"region": ["mars"]}}],
            },
            {"filters.values": ["value_is_invalid"]},
        ),
    ],
)
def test_invalid_charge_stores_nothing(tenant: Tenant, charge: dict, details: dict) -> None:
    metric_id = create_metric(tenant)
    good = Charge(billable_metric_id=metric_id, charge_model="standard", properties={"amount": "1"})
    bad = Charge(billable_metric_id=metric_id, **charge)
    error = lago_error(lambda: tenant.lago.plans.create(plan_with([good, bad])))
    assert error.status_code == 422
    assert error.response["error_details"] == details
    assert tenant.lago.plans.find_all()["plans"] == []


@pytest.mark.parametrize(
    ("metric", "charge", "accepted"),
    [
        ({"recurring": True}, {"charge_model": "standard"}, True),
        ({"recurring": True}, {"charge_model": "standard", "pay_in_advance": True}, True),
        ({"recurring": True}, {"charge_model": "package"}, False),
        ({"recurring": False}, {"charge_model": "standard"}, False),
        (
            {
                "recurring": True,
                "aggregation_type": "weighted_sum_agg",
                "weighted_interval": "seconds",
            },
            {"charge_model": "standard"},
            False,
        ),
    ],
)
def test_only_recurring_metrics_prorate_as_in_lago(
    tenant: Tenant, metric: dict, charge: dict, accepted: bool
) -> None:
    metric_id = create_metric(tenant, "seats", **metric)
    properties = {"amount": "1"} if charge["charge_model"] == "standard" else {
        "amount": "1", "package_size": 10, "free_units": 0
    }  # fmt: skip
    prorated = Charge(billable_metric_id=metric_id, prorated=True, properties=properties, **charge)
    if accepted:
        plan = tenant.lago.plans.create(plan_with([prorated]))
        assert plan is not None and plan.charges.__root__[0].prorated is True
    else:
        error = lago_error(lambda: tenant.lago.plans.create(plan_with([prorated])))
        assert error.response["error_details"] == {
            "prorated": ["invalid_billable_metric_or_charge_model"]
        }


def test_plan_references_and_uniqueness(tenant: Tenant, other_tenant: Tenant) -> None:
    missing_metric = Charge(
        billable_metric_id="00000000-0000-0000-0000-000000000000",
        charge_model="standard",
        properties={"amount": "1"},
    )
    error = lago_error(lambda: tenant.lago.plans.create(plan_with([missing_metric])))
    assert (error.status_code, error.response["code"]) == (404, "billable_metric_not_found")
    # Another organization's metric is as unknown as a missing one.
    foreign_metric = create_metric(other_tenant)
    foreign = Charge(
        billable_metric_id=foreign_metric, charge_model="standard", properties={"amount": "1"}
    )
    assert lago_error(lambda: tenant.lago.plans.create(plan_with([foreign]))).status_code == 404

    tenant.lago.plans.create(plan_with([]))
    duplicate = lago_error(lambda: tenant.lago.plans.create(plan_with([])))
    assert duplicate.response["error_details"] == {"code": ["value_already_exist"]}
    mandatory = lago_error(lambda: tenant.lago.plans.create(Plan(code="p2")))
    assert mandatory.response["error_details"] == {
        "name": ["value_is_mandatory"],
        "interval": ["value_is_mandatory"],
        "amount_cents": ["value_is_mandatory"],
        "amount_currency": ["value_is_mandatory"],
    }


def test_plan_isolation_and_delete(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.plans.create(plan_with([], code="private"))
    for call in (
        lambda: other_tenant.lago.plans.find("private"),
        lambda: other_tenant.lago.plans.update(Plan(name="x"), "private"),
        lambda: other_tenant.lago.plans.destroy("private"),
        lambda: other_tenant.lago.plan_charges.find("private", "any"),
        lambda: other_tenant.lago.plan_charges.destroy("private", "any"),
    ):
        assert lago_error(call).status_code == 404
    assert other_tenant.lago.plans.find_all()["plans"] == []
    assert tenant.lago.plans.destroy("private").code == "private"
    assert (
        lago_error(lambda: tenant.lago.plans.find("private")).response["code"] == "plan_not_found"
    )


def test_removing_metric_filter_values_prunes_charge_filters(tenant: Tenant) -> None:
    metric_id = create_metric(tenant)
    filters = ChargeFilters(
        __root__=[
            ChargeFilter(properties={"amount": "1"}, values={"region": ["eu", "us"]}),
            ChargeFilter(properties={"amount": "2"}, values={"region": ["us"]}),
        ]
    )
    charge = Charge(
        billable_metric_id=metric_id,
        charge_model="standard",
        properties={"amount": "0"},
        filters=filters,
    )
    tenant.lago.plans.create(plan_with([charge]))
    tenant.lago.billable_metrics.update(
        BillableMetric(
            filters=BillableMetricFilters(
                __root__=[BillableMetricFilter(key="region", values=["eu"])]
            )
        ),
        "api_calls",
    )
    remaining = tenant.lago.plans.find("startup").charges.__root__[0].filters.__root__
    assert [(f.values, f.properties) for f in remaining] == [({"region": ["eu"]}, {"amount": "1"})]


def test_plan_charges_by_code(tenant: Tenant, api_url: str) -> None:
    metric_id = create_metric(tenant)
    tenant.lago.plans.create(plan_with([]))
    created = tenant.lago.plan_charges.create(
        "startup",
        Charge(
            code="calls",
            billable_metric_id=metric_id,
            charge_model="standard",
            properties={"amount": "1"},
        ),
    )
    assert (created.code, created.properties) == ("calls", {"amount": "1"})
    updated = tenant.lago.plan_charges.update(
        "startup",
        "calls",
        Charge(charge_model="package", properties={"amount": "5", "package_size": 10}),
    )
    assert (updated.lago_id, updated.charge_model) == (created.lago_id, "package")
    assert tenant.lago.plan_charges.find("startup", "calls").properties["package_size"] == 10
    duplicate = lago_error(
        lambda: tenant.lago.plan_charges.create(
            "startup",
            Charge(
                code="calls",
                billable_metric_id=metric_id,
                charge_model="standard",
                properties={"amount": "1"},
            ),
        )
    )
    assert duplicate.response["error_details"] == {"code": ["value_already_exist"]}
    listed = httpx.get(
        f"{api_url}/api/v1/plans/startup/charges",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    ).json()
    assert [c["code"] for c in listed["charges"]] == ["calls"]
    assert tenant.lago.plan_charges.destroy("startup", "calls").code == "calls"
    assert tenant.lago.plans.find("startup").charges.__root__ == []
    assert lago_error(lambda: tenant.lago.plan_charges.find("startup", "calls")).status_code == 404


def test_plan_metadata_routes(tenant: Tenant, other_tenant: Tenant) -> None:
    tenant.lago.plans.create(plan_with([], metadata={"team": "growth"}))
    assert tenant.lago.plans.replace_metadata("startup", {"tier": "a"}) == {"tier": "a"}
    assert tenant.lago.plans.merge_metadata("startup", {"owner": "x"}) == {
        "tier": "a",
        "owner": "x",
    }
    assert tenant.lago.plans.delete_metadata_key("startup", "tier") == {"owner": "x"}
    assert tenant.lago.plans.find("startup").metadata == {"owner": "x"}
    assert tenant.lago.plans.delete_all_metadata("startup") == {}
    assert (
        lago_error(
            lambda: other_tenant.lago.plans.replace_metadata("startup", {"a": "b"})
        ).status_code
        == 404
    )


def test_charge_filters_by_id(tenant: Tenant, other_tenant: Tenant) -> None:
    metric_id = create_metric(tenant)
    charge = Charge(
        code="calls",
        billable_metric_id=metric_id,
        charge_model="standard",
        properties={"amount": "1"},
    )
    tenant.lago.plans.create(plan_with([charge]))
    created = tenant.lago.plans.create_charge_filter(
        "startup", "calls", ChargeFilter(properties={"amount": "2"}, values={"region": ["eu"]})
    )
    assert (created.values, created.properties) == ({"region": ["eu"]}, {"amount": "2"})
    updated = tenant.lago.plans.update_charge_filter(
        "startup",
        "calls",
        created.lago_id,
        ChargeFilter(values={"region": ["us"]}, properties={"amount": "3"}),
    )
    assert (updated.lago_id, updated.values, updated.properties) == (
        created.lago_id,
        {"region": ["us"]},
        {"amount": "3"},
    )
    listed = tenant.lago.plans.find_all_charge_filters("startup", "calls")
    assert [f.lago_id for f in listed["filters"]] == [created.lago_id]
    invalid = lago_error(
        lambda: tenant.lago.plans.create_charge_filter(
            "startup", "calls", ChargeFilter(properties={"amount": "x"}, values={"region": ["eu"]})
        )
    )
    assert invalid.response["error_details"] == {"amount": ["invalid_amount"]}
    assert (
        lago_error(
            lambda: other_tenant.lago.plans.find_charge_filter("startup", "calls", created.lago_id)
        ).status_code
        == 404
    )
    assert (
        tenant.lago.plans.destroy_charge_filter("startup", "calls", created.lago_id).lago_id
        == created.lago_id
    )
    assert tenant.lago.plans.find_all_charge_filters("startup", "calls")["filters"] == []
