from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lago_python_client.models import Charge, Customer, Plan, Subscription
from lago_python_client.models.charge import (
    ChargeFilter,
    ChargeFilters,
    ChargeOverrides,
    ChargesOverrides,
)
from lago_python_client.models.plan import PlanOverrides

from tests.api.conftest import Tenant
from tests.api.test_plans import create_metric, lago_error, plan_with
from tests.support.processes import meterhouse_command


def make_plans(tenant: Tenant) -> str:
    metric_id = create_metric(tenant)
    charge = Charge(
        billable_metric_id=metric_id, charge_model="standard", properties={"amount": "1"}
    )
    tenant.lago.plans.create(plan_with([charge], code="basic", amount_cents=1000))
    tenant.lago.plans.create(plan_with([], code="premium", amount_cents=5000))
    tenant.lago.plans.create(plan_with([], code="usd_plan", amount_cents=100))
    return metric_id


def subscribe(tenant: Tenant, plan_code: str, **fields: Any) -> Any:
    return tenant.lago.subscriptions.create(
        Subscription(
            external_customer_id=fields.pop("external_customer_id", "cust"),
            plan_code=plan_code,
            external_id=fields.pop("external_id", "sub_1"),
            **fields,
        )
    )


def test_subscription_starts_now_and_creates_customer(tenant: Tenant) -> None:
    make_plans(tenant)
    sub = subscribe(tenant, "basic", billing_time="anniversary", name="Main")
    assert (sub.status, sub.plan_code, sub.billing_time, sub.name) == (
        "active",
        "basic",
        "anniversary",
        "Main",
    )
    assert sub.external_customer_id == "cust" and sub.started_at is not None
    assert sub.current_billing_period_started_at is not None
    # The customer was created on the fly, its currency fixed by the plan.
    assert tenant.lago.customers.find("cust").currency == "EUR"
    assert tenant.lago.subscriptions.find("sub_1").lago_id == sub.lago_id
    listed = tenant.lago.subscriptions.find_all({"external_customer_id": "cust"})
    assert [s.external_id for s in listed["subscriptions"]] == ["sub_1"]


def test_future_subscription_is_pending_and_can_be_canceled(tenant: Tenant) -> None:
    make_plans(tenant)
    future = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sub = subscribe(tenant, "basic", subscription_at=future)
    assert (sub.status, sub.started_at, sub.subscription_at) == ("pending", None, future)
    assert tenant.lago.subscriptions.find_all()["subscriptions"] == []
    pending = tenant.lago.subscriptions.find_all({"status[]": "pending"})["subscriptions"]
    assert [s.lago_id for s in pending] == [sub.lago_id]
    canceled = tenant.lago.subscriptions.destroy("sub_1", options={"status": "pending"})
    assert canceled.status == "canceled" and canceled.canceled_at is not None


def test_upgrade_terminates_old_and_starts_new_now(tenant: Tenant) -> None:
    make_plans(tenant)
    old = subscribe(tenant, "basic")
    new = subscribe(tenant, "premium")
    assert new.lago_id != old.lago_id
    assert (new.status, new.plan_code, new.previous_plan_code) == ("active", "premium", "basic")
    terminated = tenant.lago.subscriptions.find("sub_1", params={"status": "terminated"})
    assert terminated.lago_id == old.lago_id and terminated.terminated_at is not None
    assert terminated.next_plan_code == "premium"
    assert tenant.lago.subscriptions.find("sub_1").lago_id == new.lago_id


def test_trial_counts_from_the_first_start_of_the_external_id(tenant: Tenant) -> None:
    make_plans(tenant)
    tenant.lago.plans.create(plan_with([], code="trial_30", amount_cents=9000, trial_period=30))
    # Started 20 days ago on a plan without trial, upgraded now to a 30-day trial plan: the
    # trial runs from the first start, so 10 days are left, not 30 (Lago's initial_started_at).
    first_start = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)
    subscribe(tenant, "basic", subscription_at=first_start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    upgraded = subscribe(tenant, "trial_30")
    assert upgraded.plan_code == "trial_30" and upgraded.previous_plan_code == "basic"
    expected_end = first_start + timedelta(days=30)
    assert upgraded.trial_ended_at == expected_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Ended on 2024-01-10, subscribed again under the same external id on 2024-03-01: the trial
    # ended on 2024-01-31 (Jan 1 + 30 days), so the second subscription has none left.
    subscribe(
        tenant,
        "trial_30",
        external_id="sub_2",
        subscription_at="2024-01-01T00:00:00Z",
        ending_at="2024-01-10T12:00:00Z",
    )
    again = subscribe(
        tenant, "trial_30", external_id="sub_2", subscription_at="2024-03-01T00:00:00Z"
    )
    assert (again.status, again.started_at) == ("active", "2024-03-01T00:00:00Z")
    assert again.trial_ended_at == "2024-01-31T00:00:00Z"
    ended = tenant.lago.subscriptions.find("sub_2", params={"status": "terminated"})
    assert ended.terminated_at == "2024-01-10T12:00:00Z"
    # A new external id (here of another customer) starts its own trial.
    fresh = subscribe(
        tenant,
        "trial_30",
        external_customer_id="other",
        external_id="sub_3",
        subscription_at="2024-03-01T00:00:00Z",
    )
    assert fresh.trial_ended_at == "2024-03-31T00:00:00Z"


def test_downgrade_waits_for_period_end(tenant: Tenant) -> None:
    make_plans(tenant)
    subscribe(tenant, "premium")
    current = subscribe(tenant, "basic")
    assert (current.plan_code, current.status, current.next_plan_code) == (
        "premium",
        "active",
        "basic",
    )
    assert current.downgrade_plan_date is not None
    pending = tenant.lago.subscriptions.find("sub_1", params={"status": "pending"})
    assert (pending.plan_code, pending.previous_plan_code) == ("basic", "premium")
    # Terminating the current subscription cancels the pending downgrade with it.
    terminated = tenant.lago.subscriptions.destroy(
        "sub_1", options={"on_termination_credit_note": "refund"}
    )
    assert (terminated.status, terminated.on_termination_credit_note) == ("terminated", "refund")
    canceled = tenant.lago.subscriptions.find("sub_1", params={"status": "canceled"})
    assert canceled.lago_id == pending.lago_id


def test_plan_overrides_create_a_child_plan(tenant: Tenant) -> None:
    make_plans(tenant)
    basic = tenant.lago.plans.find("basic")
    charge_id = basic.charges.__root__[0].lago_id
    sub = subscribe(
        tenant,
        "basic",
        plan_overrides=PlanOverrides(
            amount_cents=800,
            charges=ChargesOverrides(
                __root__=[ChargeOverrides(id=charge_id, properties={"amount": "0.5"})]
            ),
        ),
    )
    assert (sub.plan_code, sub.plan_amount_cents) == ("basic", "800")
    # The catalog plan is unchanged, and the override plan stays out of the plan list.
    assert tenant.lago.plans.find("basic").amount_cents == 1000
    assert [p.code for p in tenant.lago.plans.find_all()["plans"]].count("basic") == 1


def test_subscription_validation(tenant: Tenant) -> None:
    make_plans(tenant)
    missing = lago_error(lambda: tenant.lago.subscriptions.create(Subscription(plan_code="basic")))
    assert missing.response["error_details"] == {
        "external_customer_id": ["value_is_mandatory"],
        "external_id": ["value_is_mandatory"],
    }
    unknown_plan = lago_error(lambda: subscribe(tenant, "nope"))
    assert (unknown_plan.status_code, unknown_plan.response["code"]) == (404, "plan_not_found")
    tenant.lago.customers.create(Customer(external_id="usd_cust", currency="USD"))
    mismatch = lago_error(lambda: subscribe(tenant, "basic", external_customer_id="usd_cust"))
    assert mismatch.response["error_details"] == {"currency": ["currencies_does_not_match"]}
    bad_end = lago_error(
        lambda: subscribe(
            tenant,
            "basic",
            subscription_at="2024-01-10T00:00:00Z",
            ending_at="2024-01-01T00:00:00Z",
        )
    )
    assert bad_end.response["error_details"] == {"ending_at": ["invalid_date"]}
    assert (
        tenant.lago.subscriptions.find_all({"status[]": ["active", "pending"]})["subscriptions"]
        == []
    )
    # A bad filter value names its query parameter, whichever of its values it is.
    bad_status = lago_error(
        lambda: tenant.lago.subscriptions.find_all({"status[]": ["active", "bogus"]})
    )
    assert bad_status.response["error_details"] == {"status": ["value_is_invalid"]}


def test_subscription_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    make_plans(tenant)
    subscribe(tenant, "basic")
    for call in (
        lambda: other_tenant.lago.subscriptions.find("sub_1"),
        lambda: other_tenant.lago.subscriptions.update(Subscription(name="x"), "sub_1"),
        lambda: other_tenant.lago.subscriptions.destroy("sub_1"),
        lambda: subscribe(other_tenant, "basic"),  # the plan code is unknown there
    ):
        assert lago_error(call).status_code == 404
    assert other_tenant.lago.subscriptions.find_all()["subscriptions"] == []
    assert tenant.lago.subscriptions.find("sub_1").status == "active"


def test_update_subscription(tenant: Tenant) -> None:
    make_plans(tenant)
    subscribe(tenant, "basic")
    ending = (datetime.now(UTC) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    updated = tenant.lago.subscriptions.update(
        Subscription(name="Renamed", ending_at=ending), "sub_1"
    )
    assert (updated.name, updated.ending_at) == ("Renamed", ending)


@pytest.mark.parametrize("delete_first", ["customer", "plan"])
def test_deleting_customer_or_plan_ends_subscriptions(tenant: Tenant, delete_first: str) -> None:
    make_plans(tenant)
    subscribe(tenant, "basic")
    if delete_first == "customer":
        tenant.lago.customers.destroy("cust")
    else:
        tenant.lago.plans.destroy("basic")
    assert tenant.lago.subscriptions.find("sub_1").status == "terminated"


def test_due_start_and_end_are_applied(tenant: Tenant) -> None:
    make_plans(tenant)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    later = soon + timedelta(seconds=1)
    sub = subscribe(
        tenant,
        "basic",
        subscription_at=soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ending_at=later.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    assert sub.status == "pending"
    time.sleep(max((soon - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    started = tenant.lago.subscriptions.find("sub_1")
    assert started.status == "active" and started.started_at is not None
    time.sleep(max((later - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    ended = tenant.lago.subscriptions.find("sub_1")
    assert ended.status == "terminated" and ended.terminated_at == later.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_downgrade_takes_over_when_its_period_ends(tenant: Tenant, admin_client: Any) -> None:
    make_plans(tenant)
    subscribe(tenant, "premium", subscription_at="2024-01-15T00:00:00Z")
    subscribe(tenant, "basic")
    pending = tenant.lago.subscriptions.find("sub_1", params={"status": "pending"})
    # Pretend the downgrade was requested on 2024-02-10: its period ended on 2024-02-29.
    row = next(
        admin_client.query(
            "SELECT * FROM subscriptions FINAL WHERE id = {id:UUID}",
            parameters={"id": pending.lago_id},
        ).named_results()
    )
    row.update(created_at=datetime(2024, 2, 10, tzinfo=UTC), version=row["version"] + 1)
    admin_client.insert("subscriptions", [list(row.values())], column_names=list(row))
    current = tenant.lago.subscriptions.find("sub_1")
    assert (current.lago_id, current.status, current.plan_code) == (
        pending.lago_id,
        "active",
        "basic",
    )
    assert current.started_at == "2024-03-01T00:00:00Z"
    old = tenant.lago.subscriptions.find("sub_1", params={"status": "terminated"})
    assert (old.plan_code, old.terminated_at) == ("premium", "2024-03-01T00:00:00Z")


def test_transitions_command(tenant: Tenant, warehouse: Any) -> None:
    make_plans(tenant)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    subscribe(tenant, "basic", subscription_at=soon.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    time.sleep(1.5)
    done = subprocess.run(
        meterhouse_command("api", "apply-transitions"),
        env={**os.environ, **warehouse.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "organizations" in done.stdout
    status = warehouse.client().command(
        "SELECT status FROM subscriptions FINAL WHERE organization_id = {o:UUID}",
        parameters={"o": tenant.organization_id},
    )
    assert status == "active"


def test_refused_subscription_writes_nothing(tenant: Tenant) -> None:
    make_plans(tenant)
    subscribe(tenant, "basic", external_customer_id="first")
    taken = lago_error(lambda: subscribe(tenant, "basic", external_customer_id="second"))
    assert taken.response["error_details"] == {"external_id": ["value_already_exist"]}
    # The customer Lago would create on the fly was not created for the refused request.
    assert [c.external_id for c in tenant.lago.customers.find_all()["customers"]] == ["first"]
    override = PlanOverrides(amount_currency="USD")
    mismatch = lago_error(
        lambda: subscribe(
            tenant, "basic", external_id="s2", external_customer_id="first", plan_overrides=override
        )
    )
    assert mismatch.response["error_details"] == {"amount_currency": ["currencies_does_not_match"]}


def test_plan_with_subscriptions_keeps_its_billing_terms(tenant: Tenant) -> None:
    make_plans(tenant)
    subscribe(tenant, "basic")
    basic = tenant.lago.plans.find("basic")
    charge = basic.charges.__root__[0]
    updated = tenant.lago.plans.update(
        Plan(
            name="Basic v2",
            interval="yearly",
            amount_currency="USD",
            amount_cents=1200,
            charges=ChargesOverrides(
                __root__=[
                    ChargeOverrides(
                        id=charge.lago_id, properties={"amount": "2"}, min_amount_cents=500
                    )
                ]
            ),
        ),
        "basic",
    )
    # Like Lago: names, amount and charge prices change; interval, currency and charge terms stay.
    assert (updated.name, updated.amount_cents, updated.interval, updated.amount_currency) == (
        "Basic v2",
        1200,
        "monthly",
        "EUR",
    )
    only = updated.charges.__root__[0]
    assert (only.properties, only.min_amount_cents) == ({"amount": "2"}, 0)


def test_plan_amount_change_cancels_downgrades_that_no_longer_are(tenant: Tenant) -> None:
    make_plans(tenant)
    subscribe(tenant, "premium")
    subscribe(tenant, "basic")  # downgrade premium (5000) -> basic (1000), pending
    tenant.lago.plans.update(Plan(amount_cents=9000), "basic")  # basic now costs more
    canceled = tenant.lago.subscriptions.find("sub_1", params={"status": "canceled"})
    assert canceled.plan_code == "basic"
    assert tenant.lago.subscriptions.find("sub_1").next_plan_code is None


def test_subscription_charge_overrides(tenant: Tenant, other_tenant: Tenant) -> None:
    metric_id = create_metric(tenant)
    charge = Charge(
        code="calls",
        billable_metric_id=metric_id,
        charge_model="standard",
        properties={"amount": "1"},
        filters=ChargeFilters(
            __root__=[ChargeFilter(properties={"amount": "2"}, values={"region": ["eu"]})]
        ),
    )
    tenant.lago.plans.create(plan_with([charge], code="basic"))
    subscribe(tenant, "basic")
    catalog_filter = tenant.lago.plans.find_all_charge_filters("basic", "calls")["filters"][0]
    overridden = tenant.lago.subscription_charges.update(
        "sub_1", "calls", Charge(properties={"amount": "0.5"}, min_amount_cents=300)
    )
    assert (overridden.properties, overridden.min_amount_cents) == ({"amount": "0.5"}, 300)
    assert tenant.lago.subscription_charges.find("sub_1", "calls").properties == {"amount": "0.5"}
    # The catalog plan is untouched; the subscription now bills its own copy.
    assert tenant.lago.plans.find("basic").charges.__root__[0].properties == {"amount": "1"}
    own_filter = tenant.lago.subscriptions.find_all_charge_filters("sub_1", "calls")["filters"][0]
    assert own_filter.lago_id != catalog_filter.lago_id
    updated = tenant.lago.subscriptions.update_charge_filter(
        "sub_1", "calls", own_filter.lago_id, ChargeFilter(properties={"amount": "3"})
    )
    assert updated.properties == {"amount": "3"}
    added = tenant.lago.subscriptions.create_charge_filter(
        "sub_1", "calls", ChargeFilter(properties={"amount": "4"}, values={"region": ["us"]})
    )
    assert tenant.lago.subscriptions.find_charge_filter("sub_1", "calls", added.lago_id).values == {
        "region": ["us"]
    }
    tenant.lago.subscriptions.destroy_charge_filter("sub_1", "calls", added.lago_id)
    assert len(tenant.lago.subscriptions.find_all_charge_filters("sub_1", "calls")["filters"]) == 1
    assert tenant.lago.subscriptions.find("sub_1").plan_code == "basic"
    # A first change naming the catalog plan's filter changes this subscription's copy of it.
    subscribe(tenant, "basic", external_id="sub_2")
    copied = tenant.lago.subscriptions.update_charge_filter(
        "sub_2", "calls", catalog_filter.lago_id, ChargeFilter(properties={"amount": "9"})
    )
    assert copied.lago_id != catalog_filter.lago_id and copied.properties == {"amount": "9"}
    assert tenant.lago.plans.find_all_charge_filters("basic", "calls")["filters"][0].properties == {
        "amount": "2"
    }
    hidden = lago_error(lambda: other_tenant.lago.subscription_charges.find("sub_1", "calls"))
    assert hidden.status_code == 404
