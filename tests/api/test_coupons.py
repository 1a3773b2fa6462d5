from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import AppliedCoupon, Coupon, Customer, LimitationConfiguration

from tests.api.conftest import Tenant
from tests.api.test_plans import create_metric, lago_error, plan_with


def test_coupon_lifecycle_and_limitations(tenant: Tenant) -> None:
    tenant.lago.plans.create(plan_with([], code="basic"))
    create_metric(tenant, "calls")
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fixed = tenant.lago.coupons.create(
        Coupon(
            name="Welcome",
            code="welcome",
            coupon_type="fixed_amount",
            amount_cents=1000,
            amount_currency="EUR",
            frequency="once",
            expiration="time_limit",
            expiration_at=in_a_month,
            applies_to=LimitationConfiguration(plan_codes=["basic"]),
        )
    )
    assert (fixed.limited_plans, fixed.plan_codes, fixed.expiration_at) == (
        True,
        ["basic"],
        in_a_month,
    )
    percent = tenant.lago.coupons.create(
        Coupon(
            name="Ten",
            code="ten",
            coupon_type="percentage",
            percentage_rate=10.0,
            frequency="recurring",
            frequency_duration=3,
            expiration="no_expiration",
            reusable=False,
            applies_to=LimitationConfiguration(billable_metric_codes=["calls"]),
        )
    )
    assert (percent.percentage_rate, percent.billable_metric_codes, percent.reusable) == (
        10.0,
        ["calls"],
        False,
    )
    assert tenant.lago.coupons.update(Coupon(name="Ten percent"), "ten").name == "Ten percent"
    assert tenant.lago.coupons.find_all()["meta"]["total_count"] == 2
    both = lago_error(
        lambda: tenant.lago.coupons.create(
            Coupon(
                name="x",
                code="x",
                coupon_type="percentage",
                percentage_rate=1.0,
                frequency="once",
                expiration="no_expiration",
                applies_to=LimitationConfiguration(
                    plan_codes=["basic"], billable_metric_codes=["calls"]
                ),
            )
        )
    )
    assert (both.status_code, both.response["code"]) == (
        405,
        "only_one_limitation_type_per_coupon_allowed",
    )
    invalid = lago_error(
        lambda: tenant.lago.coupons.create(
            Coupon(
                name="x",
                code="y",
                coupon_type="fixed_amount",
                frequency="recurring",
                expiration="time_limit",
            )
        )
    )
    assert invalid.response["error_details"] == {
        "amount_cents": ["value_is_mandatory"],
        "amount_currency": ["value_is_invalid"],
        "frequency_duration": ["value_is_mandatory"],
        "expiration_at": ["invalid_date"],
    }
    tenant.lago.coupons.destroy("welcome")
    assert lago_error(lambda: tenant.lago.coupons.find("welcome")).status_code == 404


def test_applied_coupons(tenant: Tenant) -> None:
    tenant.lago.customers.create(Customer(external_id="cust", currency="EUR"))
    tenant.lago.coupons.create(
        Coupon(
            name="Once",
            code="once",
            coupon_type="fixed_amount",
            amount_cents=500,
            amount_currency="EUR",
            frequency="once",
            expiration="no_expiration",
            reusable=False,
        )
    )
    applied = tenant.lago.applied_coupons.create(
        AppliedCoupon(external_customer_id="cust", coupon_code="once", amount_cents=300)
    )
    assert (applied.coupon_code, applied.amount_cents, applied.amount_cents_remaining) == (
        "once",
        300,
        300,
    )
    assert applied.status == "active" and applied.external_customer_id == "cust"
    again = lago_error(
        lambda: tenant.lago.applied_coupons.create(
            AppliedCoupon(external_customer_id="cust", coupon_code="once")
        )
    )
    assert again.response["error_details"] == {"coupon": ["coupon_is_not_reusable"]}
    listed = tenant.lago.applied_coupons.find_all({"external_customer_id": "cust"})
    assert [a.lago_id for a in listed["applied_coupons"]] == [applied.lago_id]
    terminated = tenant.lago.applied_coupons.destroy("cust", applied.lago_id)
    assert terminated.status == "terminated" and terminated.terminated_at is not None
    missing = lago_error(
        lambda: tenant.lago.applied_coupons.create(
            AppliedCoupon(external_customer_id="nobody", coupon_code="once")
        )
    )
    assert missing.response["code"] == "customer_not_found"


def test_coupon_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    coupon = Coupon(
        name="Mine",
        code="mine",
        coupon_type="percentage",
        percentage_rate=5.0,
        frequency="forever",
        expiration="no_expiration",
    )
    tenant.lago.coupons.create(coupon)
    tenant.lago.customers.create(Customer(external_id="cust"))
    applied = tenant.lago.applied_coupons.create(
        AppliedCoupon(external_customer_id="cust", coupon_code="mine")
    )
    other_tenant.lago.customers.create(Customer(external_id="cust"))
    for call in (
        lambda: other_tenant.lago.coupons.find("mine"),
        lambda: other_tenant.lago.coupons.update(Coupon(name="x"), "mine"),
        lambda: other_tenant.lago.coupons.destroy("mine"),
        lambda: other_tenant.lago.applied_coupons.create(
            AppliedCoupon(external_customer_id="cust", coupon_code="mine")
        ),
        lambda: other_tenant.lago.applied_coupons.destroy("cust", applied.lago_id),
    ):
        with pytest.raises(LagoApiError) as hidden:
            call()
        assert hidden.value.status_code == 404
    assert other_tenant.lago.coupons.find_all()["coupons"] == []
    assert other_tenant.lago.applied_coupons.find_all()["applied_coupons"] == []
